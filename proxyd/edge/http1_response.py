"""The response side of proxyd's upstream HTTP/1.1 client (proxyd.edge.http1): one pooled
connection, the errors, the response framing rules and the Response whose body is handed over as
it arrives (content-length, chunked or until-close), or spliced socket to socket
(proxyd.edge.splice) for a large Content-Length body.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import trio

from proxyd.edge import splice

MAX_HEAD = 64 * 1024
READ_SIZE = 1024 * 1024  # body reads: larger reads mean fewer trips per MiB
HEAD_READ_SIZE = 64 * 1024  # head reads: most answers fit, no large transient buffer
IDLE_EXPIRY = 30.0
TRUST_IDLE = 1.0  # an idle connection younger than this is used without a liveness probe
NO_BODY_STATUSES = frozenset({204, 304})


class UpstreamError(Exception):
    """The upstream exchange failed."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect or answer within the timeout."""


class UpstreamProtocolError(UpstreamError):
    """The upstream sent something that is not valid HTTP/1.1, or closed mid-response."""


class Connection:
    """One upstream connection and its read buffer."""

    __slots__ = ("buffer", "idle_since", "key", "socket", "stream", "tcp")

    def __init__(self, stream: trio.abc.Stream, sock, key: tuple, tcp=None) -> None:
        self.stream = stream
        self.tcp = tcp  # the plain socket stream (the same object as stream without TLS)
        self.socket = sock
        self.buffer = bytearray()
        self.idle_since = 0.0
        self.key = key

    def looks_alive(self) -> bool:
        """An idle keep-alive connection is usable if the peer has not closed it (no data and
        no EOF waiting)."""
        return not self.buffer and not self.socket.is_readable()

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await self.stream.aclose()


class Response:
    """Status and headers of an upstream response; iterate body() for the payload."""

    __slots__ = (
        "_conn",
        "_done",
        "_framing",
        "_keep_alive",
        "_pool",
        "_read_timeout",
        "_remaining",
        "headers",
        "status",
    )

    def __init__(self, status, headers, conn, pool, framing, remaining, keep_alive, read_timeout):
        self.status = status
        self.headers = headers
        self._conn = conn
        self._pool = pool
        self._framing = framing
        self._remaining = remaining
        self._keep_alive = keep_alive
        self._read_timeout = read_timeout
        self._done = framing == "none"

    def complete_body(self) -> bytes | None:
        """The whole body if it is already buffered (a small response read with its head)."""
        if self._done:
            return b""
        if self._framing == "length" and len(self._conn.buffer) >= self._remaining:
            body = bytes(self._conn.buffer[: self._remaining])
            del self._conn.buffer[: self._remaining]
            self._remaining = 0
            self._done = True
            return body
        return None

    def splice_plan(self) -> tuple[int, int]:
        """(whole body length, bytes of it still to come from the socket) of a Content-Length
        body on a plain-TCP connection that nothing has been read of yet; (0, 0) when the body
        cannot be spliced (other framing, TLS, no splice on this system)."""
        conn = self._conn
        if self._done or self._framing != "length" or not splice.AVAILABLE:
            return 0, 0
        if conn.stream is not conn.tcp:
            return 0, 0
        return self._remaining, self._remaining - min(len(conn.buffer), self._remaining)

    def take_buffered(self) -> bytes:
        """The body bytes already read with the head (before splice_to sends the rest)."""
        buffer = self._conn.buffer
        chunk = bytes(buffer[: self._remaining])
        del buffer[: len(chunk)]
        self._remaining -= len(chunk)
        return chunk

    async def splice_to(
        self, dst: trio.socket.SocketType, send_timeout: float | None = None
    ) -> None:
        """Move the rest of a Content-Length body straight from the upstream socket to dst
        (after take_buffered); a close or a stall of the upstream raises as body() would, dst
        taking nothing for send_timeout seconds raises trio.BrokenResourceError."""
        conn = self._conn
        if conn.buffer:
            raise RuntimeError("take the buffered body bytes first")
        try:
            await splice.relay(
                conn.socket,
                dst,
                self._remaining,
                idle_timeout=self._read_timeout,
                send_timeout=send_timeout,
            )
        except splice.SourceEnded:
            raise UpstreamProtocolError("upstream closed the connection mid-response") from None
        except splice.SourceTimeout:
            raise UpstreamTimeout("no data within the read timeout") from None
        self._remaining = 0
        self._done = True
        if conn.socket.is_readable():
            self._keep_alive = False  # bytes past the body (or its close): never reuse

    async def body(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if self._framing == "length":
            while self._remaining:
                chunk = await self._take(self._remaining)
                self._remaining -= len(chunk)
                yield chunk
        elif self._framing == "chunked":
            async for chunk in self._chunks():
                yield chunk
        elif self._framing == "close":
            if conn.buffer:
                chunk = bytes(conn.buffer)
                conn.buffer.clear()
                yield chunk
            while True:
                data = await self._receive()
                if not data:
                    break
                yield data
        self._done = True

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            line = await self._line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise UpstreamProtocolError("bad chunk size") from None
            if size == 0:
                while await self._line():  # trailers, up to the empty line
                    pass
                return
            left = size
            while left:
                chunk = await self._take(left)
                left -= len(chunk)
                yield chunk
            if await self._line():
                raise UpstreamProtocolError("chunk not followed by CRLF")

    async def _take(self, limit: int) -> bytes:
        """Up to limit body bytes: from the buffer, else straight from the socket (no copy
        through the buffer for large bodies)."""
        conn = self._conn
        buffer = conn.buffer
        if buffer:
            chunk = bytes(buffer[:limit])
            del buffer[: len(chunk)]
            return chunk
        data = await self._receive()
        if not data:
            raise UpstreamProtocolError("upstream closed the connection mid-response")
        if len(data) > limit:
            buffer += data[limit:]
            return data[:limit]
        return data

    async def _line(self) -> bytes:
        conn = self._conn
        while True:
            end = conn.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(conn.buffer[:end])
                del conn.buffer[: end + 2]
                return line
            if len(conn.buffer) > MAX_HEAD:
                raise UpstreamProtocolError("chunk header too long")
            await self._fill()

    async def _receive(self) -> bytes:
        with trio.move_on_after(self._read_timeout) as scope:
            try:
                return await self._conn.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, OSError, ssl.SSLError) as exc:
                raise UpstreamProtocolError(f"connection broken: {exc}") from None
        if scope.cancelled_caught:
            raise UpstreamTimeout("no data within the read timeout")
        raise AssertionError("unreachable")

    async def _fill(self) -> None:
        data = await self._receive()
        if not data:
            raise UpstreamProtocolError("upstream closed the connection mid-response")
        self._conn.buffer += data

    async def aclose(self) -> None:
        """Return the connection to the pool when the exchange finished cleanly, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep_alive and not conn.buffer:
            self._pool.release(conn)
        else:
            await conn.aclose()


def request_head(method: str, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


_FRAMING_FIELDS = frozenset({b"connection", b"transfer-encoding", b"content-length"})
_OWS = (0x20, 0x09)  # space, tab


def parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]], bool, list]:
    """One response head (without its final blank line): (status, headers with lower-case names
    and stripped values, keep_alive, the Transfer-Encoding and Content-Length fields). Connection
    decides keep_alive (close wins over keep-alive; HTTP/1.0 defaults to close)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise UpstreamProtocolError("not an HTTP/1.x response")
    try:
        status = int(parts[1])
    except ValueError:
        raise UpstreamProtocolError("bad status code") from None
    keep_alive = parts[0] == b"HTTP/1.1"
    headers = []
    fields = []  # only what _framing needs: one pass over the head, not three
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[-1] in _OWS:
            raise UpstreamProtocolError("malformed header line")
        name = name.lower()
        value = value.strip()
        headers.append((name, value))
        if name in _FRAMING_FIELDS:
            if name != b"connection":
                fields.append((name, value))
                continue
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    return status, headers, keep_alive, fields


def _framing(method: str, status: int, headers) -> tuple[str, int]:
    """How the response body is delimited: ("none"|"length"|"chunked"|"close", length).
    headers: at least the Transfer-Encoding and Content-Length fields (parse_head gives them).

    Strict like the client side of the edge: Transfer-Encoding must end in chunked (else the
    body runs to the close), and Content-Length must be one plain number (repeated values must
    agree); a response that has both is read as chunked and its Content-Length is not passed on.
    """
    encodings = [v for n, v in headers if n == b"transfer-encoding"]
    lengths = {v.strip() for n, v in headers if n == b"content-length"}
    if encodings:
        last = b",".join(encodings).split(b",")[-1].strip().lower()
        if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
            return "none", 0
        return ("chunked", 0) if last == b"chunked" else ("close", 0)
    if len(lengths) > 1:
        raise UpstreamProtocolError("conflicting content-length values")
    length = None
    if lengths:
        value = lengths.pop()
        if not value.isdigit():
            raise UpstreamProtocolError("bad content-length")
        length = int(value)
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return "none", 0
    if length is None:
        return "close", 0
    return ("length", length) if length else ("none", 0)
