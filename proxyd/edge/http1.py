"""A lean HTTP/1.1 upstream client on trio streams, with a keep-alive connection pool.

Why not httpx on the hot path: profiling showed httpx + httpcore costing about 0.7 ms of CPU per
proxied request here (a third of proxyd's CPU), mostly in layers a reverse proxy does not need
(auth and redirect handling, cookie jars, URL models, header normalisation, per-request
connection-pool locking). This client does only what forwarding needs: write the request head and
stream the body, parse the response head, and hand the body over as it arrives (content-length,
chunked or until-close framing), reusing connections per (scheme, host, port).

Errors: UpstreamConnectError (cannot connect: 502), UpstreamTimeout (connect or read took too
long, or the upstream took none of the request for the read timeout: 504),
UpstreamProtocolError (malformed or truncated response: 502).
"""

from __future__ import annotations

import collections
import ssl
import time
from collections.abc import AsyncIterator

import trio

from proxyd.edge import splice
from proxyd.edge.fastsock import FastStream, SendTimeout
from proxyd.edge.http1_response import (
    HEAD_READ_SIZE,
    IDLE_EXPIRY,
    MAX_HEAD,
    TRUST_IDLE,
    Connection,
    Response,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    _framing,
    parse_head,
    request_head,
)

__all__ = [
    "ConnectionPool",
    "Pending",
    "Response",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamTimeout",
    "request_head",
]


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port), most recently used first."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext,
        max_idle_per_host: int = 64,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ssl_context = ssl_context
        self.max_idle = max_idle_per_host
        self._idle: dict[tuple, collections.deque[Connection]] = {}

    def release(self, conn: Connection) -> None:
        idle = self._idle.setdefault(conn.key, collections.deque())
        if len(idle) >= self.max_idle:
            trio.lowlevel.spawn_system_task(conn.aclose)
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _take_idle(self, key: tuple, careful: bool) -> Connection | None:
        """The most recently used idle connection. Its liveness is probed (a poll syscall) only
        when a lost request could not be retried (careful: it has a body) or it idled a while."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            age = now - conn.idle_since
            if age < IDLE_EXPIRY and (
                (not careful and age < TRUST_IDLE and not conn.buffer) or conn.looks_alive()
            ):
                return conn
            trio.lowlevel.spawn_system_task(conn.aclose)
        return None

    async def _connect(self, key: tuple) -> Connection:
        scheme, host, port = key
        with trio.move_on_after(self.connect_timeout) as scope:
            try:
                tcp = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                raise UpstreamConnectError(f"cannot connect to {host}:{port}: {exc}") from None
            sock = tcp.socket
            # An upstream that takes none of the request for the read timeout is given up.
            stream: trio.abc.Stream = FastStream(tcp, self.read_timeout)
            if scheme == "https":
                tls = trio.SSLStream(
                    stream, self.ssl_context, server_hostname=host, https_compatible=True
                )
                try:
                    await tls.do_handshake()
                except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
                    await tcp.aclose()
                    reason = exc.__cause__ or exc  # trio wraps the SSLError that says why
                    raise UpstreamConnectError(f"TLS with {host}:{port} failed: {reason}") from None
                stream = tls
            return Connection(stream, sock, key, stream if scheme != "https" else None)
        assert scope.cancelled_caught
        raise UpstreamTimeout(f"no connection to {host}:{port} within the connect timeout")

    async def connect(self, key: tuple[str, str, int]) -> Connection:
        """A fresh connection that is not taken from or returned to the pool (upgrades)."""
        return await self._connect(key)

    async def read_head(self, conn: Connection) -> tuple[int, list, bool]:
        """Read one response head from conn: (status, headers, keep_alive)."""
        try:
            status, headers, keep_alive, _ = await self._read_head(conn)
        except _StaleConnection:
            raise UpstreamProtocolError("upstream closed the connection") from None
        return status, headers, keep_alive

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for conn in connections:
                await conn.aclose()

    async def request(
        self,
        method: str,
        key: tuple[str, str, int],
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
        chunked: bool,
        ready_grace: float | None = None,
    ) -> Response | Pending:
        """Send the request (head, then body) and read the response head.

        An idle connection that turns out dead before a single response byte arrived is retried
        once on a fresh one when the request has no body (nothing was consumed).

        With ready_grace, a response that has not started within that many seconds is left
        Pending: the caller finishes it with finish() (typically while watching the client).
        """
        conn = self._take_idle(key, body is not None)
        reused = conn is not None
        if conn is None:
            conn = await self._connect(key)
        head = request_head(method, target, headers)
        try:
            return await self._exchange(conn, method, head, body, chunked, ready_grace)
        except _StaleConnection:
            await conn.aclose()
            if not reused or body is not None:
                raise UpstreamProtocolError("upstream closed the connection") from None
            conn = await self._connect(key)
            try:
                return await self._exchange(conn, method, head, body, chunked)
            except _StaleConnection:
                await conn.aclose()
                raise UpstreamProtocolError("upstream closed the connection") from None
        except BaseException:
            await conn.aclose()
            raise

    async def finish(self, pending: Pending) -> Response:
        """Read the response of a request that request() left Pending."""
        conn = pending.conn
        try:
            return await self._read_response(conn, pending.method)
        except _StaleConnection:
            await conn.aclose()
            raise UpstreamProtocolError("upstream closed the connection") from None
        except BaseException:
            await conn.aclose()
            raise

    async def _exchange(self, conn, method, head, body, chunked, ready_grace=None):
        try:
            if body is None:
                await conn.stream.send_all(head)
            else:
                await conn.stream.send_all(head)
                if isinstance(body, splice.SplicedBody):
                    body.upstream = conn  # it sends itself: splice(2) from the client's socket
                async for chunk in body:
                    if chunk:
                        await conn.stream.send_all(
                            b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
                        )
                if chunked:
                    await conn.stream.send_all(b"0\r\n\r\n")
        except SendTimeout as exc:
            raise UpstreamTimeout(f"the upstream took none of the request ({exc})") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
            raise _StaleConnection() from None
        if ready_grace is not None and not conn.buffer:
            if conn.stream is conn.tcp:
                # Let the other connections run first: a quick upstream has answered by then,
                # and the answer is read without a timer or a readiness wait.
                await trio.lowlevel.checkpoint()
                data = conn.stream.try_receive(HEAD_READ_SIZE)
                if data:
                    conn.buffer += data
                    response = self._buffered_response(conn, method)
                    if response is not None:
                        return response
                    return await self._read_response(conn, method)
            with trio.move_on_after(ready_grace) as waiting:
                await trio.lowlevel.wait_readable(conn.socket)
            if waiting.cancelled_caught:
                return Pending(conn, method)
            return await self._read_response(conn, method, True)
        return await self._read_response(conn, method)

    async def _read_response(
        self, conn: Connection, method: str, readable: bool = False
    ) -> Response:
        while True:
            status, headers, keep_alive, fields = await self._read_head(conn, readable)
            readable = False
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue and friends: the real response follows
            break
        return self._response(conn, method, status, headers, keep_alive, fields)

    def _buffered_response(self, conn: Connection, method: str) -> Response | None:
        """The response whose head is in conn.buffer already, made without awaiting anything
        (the usual case of a quick answer); None when more must be read or an interim 1xx
        response comes first (then _read_response reads it as always)."""
        buffer = conn.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        status, headers, keep_alive, fields = parse_head(bytes(buffer[:end]))
        if 100 <= status < 200 and status != 101:
            return None
        del buffer[: end + 4]
        return self._response(conn, method, status, headers, keep_alive, fields)

    def _response(self, conn, method, status, headers, keep_alive, fields) -> Response:
        framing, remaining = _framing(method, status, fields)
        if framing in ("chunked", "close") and fields:
            # The client gets proxyd's own framing; a Content-Length beside chunked is void.
            headers = [(n, v) for n, v in headers if n != b"content-length"]
        if framing == "close":
            keep_alive = False
        return Response(
            status, headers, conn, self, framing, remaining, keep_alive, self.read_timeout
        )

    async def _read_head(self, conn: Connection, readable: bool = False):
        """(status, headers, keep_alive, framing fields) of the next response head (parse_head).

        readable: the socket is known to have data (no timeout needed for the first read)."""
        buffer = conn.buffer
        start = 0
        while True:
            end = buffer.find(b"\r\n\r\n", max(0, start - 3))
            if end >= 0:
                break
            if len(buffer) > MAX_HEAD:
                raise UpstreamProtocolError("response head too large")
            start = len(buffer)
            if readable and conn.stream is conn.tcp:
                readable = False
                try:
                    data = await conn.stream.receive_some(HEAD_READ_SIZE)
                except (trio.BrokenResourceError, OSError):
                    data = b""
            else:
                with trio.move_on_after(self.read_timeout) as scope:
                    try:
                        data = await conn.stream.receive_some(HEAD_READ_SIZE)
                    except (trio.BrokenResourceError, OSError, ssl.SSLError):
                        data = b""
                if scope.cancelled_caught:
                    raise UpstreamTimeout("no response within the read timeout")
            if not data:
                if not buffer:
                    raise _StaleConnection()
                raise UpstreamProtocolError("upstream closed the connection mid-head")
            buffer += data
        head = bytes(buffer[:end])
        del buffer[: end + 4]
        return parse_head(head)


class Pending:
    """A request whose response has not started yet (see ConnectionPool.request)."""

    __slots__ = ("conn", "method")

    def __init__(self, conn: Connection, method: str) -> None:
        self.conn = conn
        self.method = method


class _StaleConnection(Exception):
    """The connection died before any response byte arrived."""
