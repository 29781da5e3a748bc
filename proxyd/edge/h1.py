"""The strict HTTP/1.1 server of the public listeners: one H1Connection per client connection.

Parsing is llhttp's (httptools) in its strict default mode, plus proxyd's own checks, so that
every message has exactly one reading. Refused, each with a one-sentence plain-text body and then
a closed connection: Content-Length with Transfer-Encoding, duplicate or invalid Content-Length,
Transfer-Encoding other than a final `chunked` (and any in HTTP/1.0), invalid chunk sizes,
obs-fold, bare CR or LF, NUL/CR/LF and other control bytes in names or values (400); versions
other than 1.0 and 1.1 (505); long targets (414); large or many headers (431); CONNECT (405);
asterisk-form except for OPTIONS, authority-form and junk targets (400); a missing, repeated or
malformed Host in HTTP/1.1 (400).

The application is called with an ASGI-shaped scope and receive/send callables, so the same
protocol-neutral request path (proxyd.edge.dispatcher and proxy_app) serves h1 and hypercorn's
h2. What this module adds on top of ASGI:
- scope["proxyd.upgrade"]: the Upgrade token of an upgrade request (None otherwise);
  scope["extensions"]["proxyd.tunnel"](status, headers, upstream_stream, upstream_leftover)
  sends the upstream's 101 and turns the connection into a byte tunnel (proxyd.edge.tunnel).
- The framing sent to the client is computed here from the bytes actually sent: a declared
  Content-Length is enforced (a short or long body closes the connection), a single-message body
  gets its length, anything else is chunked (HTTP/1.1) or close-delimited (HTTP/1.0). HEAD, 204
  and 304 carry no body. Responses carry one Date; the backend's Server header passes only when
  EDGE_PASS_SERVER_HEADER is set.
- Timeouts: the head must arrive within EDGE_HEADER_TIMEOUT of its first byte (then 408), a body
  may stall at most EDGE_BODY_TIMEOUT between reads (then 408 and the app sees a disconnect, which
  cancels the upstream request), an idle keep-alive connection closes after
  EDGE_KEEPALIVE_TIMEOUT, and after EDGE_MAX_REQUESTS_PER_CONNECTION requests the connection closes.
- `Expect: 100-continue` is answered with 100 only when the app first asks for the body, that is
  after auth and routing passed.
- HTTP/1.0 requests and `Connection: close` get their connection closed after the response;
  pipelined requests are answered in order.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

import attrs
import httptools
import trio

HEAD_READ_SIZE = 64 * 1024  # request heads (and small bodies)
BODY_READ_SIZE = 1024 * 1024  # a large body arrives in few reads; nothing is held between reads
Headers = list[tuple[bytes, bytes]]
App = Callable[[dict, Any, Any], Awaitable[None]]

_END = None  # queue marker: the request's body is complete
_HOST = re.compile(rb"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?$")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_REASONS = {
    100: b"Continue",
    101: b"Switching Protocols",
    200: b"OK",
    201: b"Created",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    421: b"Misdirected Request",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
    508: b"Loop Detected",
}
_SKIP_RESPONSE = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"date", b"upgrade"}
)
_NO_BODY = frozenset({204, 304})


@attrs.frozen
class EdgeLimits:
    """The h1 server's limits and timeouts (settings EDGE_*)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0
    max_requests: int = 1000
    max_request_line: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    pass_server_header: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> EdgeLimits:
        return cls(
            header_timeout=settings.edge_header_timeout,
            body_timeout=settings.edge_body_timeout,
            keepalive_timeout=settings.edge_keepalive_timeout,
            max_requests=settings.edge_max_requests_per_connection,
            max_request_line=settings.edge_max_request_line,
            max_header_bytes=settings.edge_max_header_bytes,
            max_headers=settings.edge_max_headers,
            pass_server_header=settings.edge_pass_server_header,
        )


class Refusal(Exception):
    """A request proxyd will not read any further: status and one sentence, then close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Date:
    """The Date header value, formatted at most once per second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second = second
            cls.value = formatdate(second, usegmt=True).encode()
        return cls.value


def _reason(status: int) -> bytes:
    return _REASONS.get(status, b"Unknown")


def error_response(status: int, message: str) -> bytes:
    """A complete plain-text response that closes the connection."""
    body = (message.rstrip("\n") + "\n").encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"cache-control: no-store\r\nx-content-type-options: nosniff\r\ndate: %s\r\n"
        b"connection: close\r\n\r\n%s" % (status, _reason(status), len(body), _Date.now(), body)
    )


class _Head:
    """What the parser collected for one request head."""

    __slots__ = ("expect", "headers", "keep_alive", "method", "target", "upgrade", "version")

    def __init__(self) -> None:
        self.target = bytearray()
        self.headers: Headers = []
        self.method = b""
        self.version = ""
        self.upgrade: bytes | None = None
        self.keep_alive = True
        self.expect = False


class H1Connection:
    """Serve requests on one client connection until it closes (or must be closed)."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: App,
        limits: EdgeLimits,
        *,
        scheme: str,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        registry: Registry,
        initial: bytes = b"",
    ) -> None:
        self.stream = stream
        self.app = app
        self.limits = limits
        self.scheme = scheme
        self.client = client
        self.server = server
        self.registry = registry
        self.pending = initial  # bytes already read (the plain listener peeks for h2c)
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Any] = deque()
        self.head: _Head | None = None
        self.head_bytes = 0
        self.header_count = 0
        self.refusal: Refusal | None = None
        self.eof = False
        self.upgraded = False
        self.leftover = b""  # bytes after an upgrade request's head
        self.closing = False

    # -- parser callbacks (synchronous; they only collect) --------------------------------------
    def on_message_begin(self) -> None:
        self.head = _Head()
        self.header_count = 0

    def on_url(self, url: bytes) -> None:
        head = self.head
        head.target += url
        if len(head.target) > self.limits.max_request_line:
            self.refusal = Refusal(414, "414 URI Too Long: the request target is too long.")
            raise self.refusal

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self.head
        if head is None:  # trailers after a chunked body: dropped
            return
        self.header_count += 1
        if self.header_count > self.limits.max_headers:
            self.refusal = Refusal(
                431, "431 Request Header Fields Too Large: the request has too many headers."
            )
            raise self.refusal
        head.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        head = self.head
        parser = self.parser
        head.version = parser.get_http_version()
        head.method = parser.get_method()
        head.keep_alive = parser.should_keep_alive() and head.version == "1.1"
        if parser.should_upgrade():
            for name, value in head.headers:
                if name == b"upgrade":
                    head.upgrade = value
        self.queue.append(head)
        self.head = None  # later on_header calls are trailers

    def on_body(self, body: bytes) -> None:
        self.queue.append(body)

    def on_message_complete(self) -> None:
        self.queue.append(_END)

    # -- reading --------------------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        if self.upgraded:
            self.leftover += data
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.upgraded = True
            self.leftover = data[upgrade.args[0] :]
        except httptools.HttpParserCallbackError:
            raise self.refusal or Refusal(400, "400 Bad Request: the request is malformed.")
        except httptools.HttpParserInvalidURLError:
            raise Refusal(400, "400 Bad Request: the request target is malformed.") from None
        except httptools.HttpParserError as exc:
            text = str(exc)
            if text.startswith("Invalid HTTP version"):
                raise Refusal(505, "505 HTTP Version Not Supported: use HTTP/1.1.") from None
            raise Refusal(400, f"400 Bad Request: {text.rstrip('.')}.") from None

    async def _read(self, size: int = BODY_READ_SIZE) -> bool:
        """Read once (a body, by default) and feed the parser; False at EOF."""
        try:
            data = await self.stream.receive_some(size)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            data = b""
        if not data:
            self.eof = True
            return False
        self._feed(data)
        return True

    async def _next_head(self, first: bool) -> _Head | None:
        """Wait for the next request head; None when the connection should just close."""
        queue = self.queue
        while queue and not isinstance(queue[0], _Head):
            queue.popleft()  # an unread body's leftovers (only when it was complete)
        if queue:
            return queue.popleft()
        if self.eof or self.upgraded:
            return None
        limits = self.limits
        # Idle: wait for the first byte (closed at once when the server drains).
        registry = self.registry
        with trio.CancelScope() as idle_scope:
            registry.idle.add(idle_scope)
            if registry.draining:
                idle_scope.cancel()
            idle_scope.deadline = trio.current_time() + (
                limits.header_timeout if first else limits.keepalive_timeout
            )
            try:
                got = await self._read_raw()
            finally:
                registry.idle.discard(idle_scope)
        if idle_scope.cancelled_caught or not got:
            return None
        deadline = trio.current_time() + limits.header_timeout
        self.head_bytes = len(got)
        self._feed(got)
        while not queue:
            if self.head_bytes > limits.max_header_bytes:
                raise Refusal(
                    431, "431 Request Header Fields Too Large: the request head is too large."
                )
            if self.upgraded:
                raise Refusal(400, "400 Bad Request: the request is malformed.")
            with trio.move_on_at(deadline):
                got = await self._read_raw()
                if not got:
                    return None
                self.head_bytes += len(got)
                self._feed(got)
                continue
            raise Refusal(408, "408 Request Timeout: the request head did not arrive in time.")
        if self.head_bytes > limits.max_header_bytes and not _head_fits(
            queue, limits.max_header_bytes
        ):
            raise Refusal(
                431, "431 Request Header Fields Too Large: the request head is too large."
            )
        return queue.popleft()

    @property
    def draining(self) -> bool:
        return self.registry.draining

    async def _read_raw(self) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        try:
            data = await self.stream.receive_some(HEAD_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            data = b""
        if not data:
            self.eof = True
        return data

    # -- the connection loop --------------------------------------------------------------------
    async def serve(self) -> None:
        served = 0
        try:
            while not self.closing:
                try:
                    head = await self._next_head(first=served == 0)
                except Refusal as refusal:
                    await self._send_raw(error_response(refusal.status, refusal.message))
                    return
                if head is None:
                    return
                served += 1
                if served >= self.limits.max_requests:
                    head.keep_alive = False
                exchange = Exchange(self, head)
                try:
                    scope = exchange.scope()
                except Refusal as refusal:
                    await self._send_raw(error_response(refusal.status, refusal.message))
                    return
                await exchange.run(scope)
                if not exchange.reusable():
                    return
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self.stream.aclose()

    async def _send_raw(self, data: bytes) -> bool:
        try:
            await self.stream.send_all(data)
            return True
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.closing = True
            return False


_ABSOLUTE = re.compile(rb"^[Hh][Tt][Tt][Pp][Ss]?://([^/?#@\\\s]+)(/[^?#]*)?(?:\?([^#]*))?$")


def _absolute_form(target: bytes) -> tuple[bytes, bytes, bytes]:
    """(authority, path, query) of an absolute-form target (RFC 9112 §3.2.2)."""
    match = _ABSOLUTE.match(target)
    if match is None or not _HOST.match(match.group(1)):
        raise Refusal(
            400, "400 Bad Request: the request target is neither a path nor an http(s) URL."
        )
    return match.group(1).lower(), match.group(2) or b"/", match.group(3) or b""


class Registry:
    """The connections of one listener: idle ones are closed at once when it drains."""

    def __init__(self) -> None:
        self.draining = False
        self.idle: set[trio.CancelScope] = set()

    def drain(self) -> None:
        self.draining = True
        for scope in list(self.idle):
            scope.cancel()


def _head_fits(queue: deque, limit: int) -> bool:
    head = queue[0]
    size = len(head.target) + sum(len(n) + len(v) + 4 for n, v in head.headers)
    return size <= limit


class Exchange:
    """One request and its response on an H1Connection."""

    __slots__ = (
        "body_done",
        "chunked",
        "conn",
        "continue_sent",
        "head",
        "keep_alive",
        "length",
        "no_body",
        "pending_head",
        "response_done",
        "sent",
        "started",
        "status",
        "tunnelled",
    )

    def __init__(self, conn: H1Connection, head: _Head) -> None:
        self.conn = conn
        self.head = head
        self.keep_alive = head.keep_alive and not conn.draining
        self.body_done = False
        self.started = False
        self.response_done = False
        self.continue_sent = False
        self.pending_head: bytes | None = None
        self.status = 0
        self.no_body = False
        self.length: int | None = None
        self.chunked = False
        self.sent = 0
        self.tunnelled = False

    # -- request --------------------------------------------------------------------------------
    def scope(self) -> dict:
        head = self.head
        if head.version not in ("1.1", "1.0"):
            raise Refusal(505, "505 HTTP Version Not Supported: use HTTP/1.1.")
        method = head.method.decode("ascii")
        if method == "CONNECT":
            raise Refusal(405, "405 Method Not Allowed: CONNECT is not supported by this proxy.")
        headers = head.headers
        hosts = [v for n, v in headers if n == b"host"]
        te = any(n == b"transfer-encoding" for n, _ in headers)
        if te and head.version == "1.0":
            raise Refusal(400, "400 Bad Request: Transfer-Encoding is not allowed in HTTP/1.0.")
        expect = [v for n, v in headers if n == b"expect"]
        if expect:
            if len(expect) > 1 or expect[0].lower() != b"100-continue":
                raise Refusal(400, "400 Bad Request: the only Expect accepted is 100-continue.")
            head.expect = True
        target = bytes(head.target)
        if b"#" in target:
            raise Refusal(400, "400 Bad Request: the request target contains a fragment.")
        if head.upgrade is not None and (te or any(n == b"content-length" for n, _ in headers)):
            raise Refusal(400, "400 Bad Request: an upgrade request cannot carry a body.")
        if target[:1] == b"/":
            path, _, query = target.partition(b"?")
        elif target == b"*":
            if method != "OPTIONS":
                raise Refusal(400, "400 Bad Request: the asterisk target is for OPTIONS only.")
            path, query = b"*", b""
        else:
            authority, path, query = _absolute_form(target)
            if hosts and len(hosts) > 1:
                raise Refusal(400, "400 Bad Request: the request has more than one Host header.")
            headers = [(n, v) for n, v in headers if n != b"host"]
            headers.append((b"host", authority))
            hosts = [authority]
        if len(hosts) > 1:
            raise Refusal(400, "400 Bad Request: the request has more than one Host header.")
        if hosts:
            if not _HOST.match(hosts[0]):
                raise Refusal(400, "400 Bad Request: the Host header is malformed.")
        elif head.version == "1.1":
            raise Refusal(400, "400 Bad Request: HTTP/1.1 requests need a Host header.")
        conn = self.conn
        return {
            "type": "http",
            "http_version": head.version,
            "method": method,
            "scheme": conn.scheme,
            "path": path.decode("latin-1"),
            "raw_path": path,
            "query_string": query,
            "headers": headers,
            "client": conn.client,
            "server": conn.server,
            "proxyd.upgrade": head.upgrade,
            "extensions": {"proxyd.tunnel": self.tunnel},
        }

    async def receive(self) -> dict:
        conn = self.conn
        queue = conn.queue
        if self.body_done:
            # The app waits for a disconnect: read on only while nothing else is queued.
            while not queue and not conn.eof and not conn.upgraded and not self.response_done:
                try:
                    if not await conn._read(HEAD_READ_SIZE):
                        break
                except Refusal:
                    conn.closing = True
                    break
            if conn.eof:
                return {"type": "http.disconnect"}
            await trio.sleep_forever()
        if self.head.expect and not self.continue_sent and not self.started:
            self.continue_sent = True
            if not queue:
                await conn._send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not queue:
            if conn.eof:
                return {"type": "http.disconnect"}
            with trio.move_on_after(conn.limits.body_timeout) as scope:
                try:
                    await conn._read()
                except Refusal as refusal:
                    await self._abort(refusal.status, refusal.message)
                    return {"type": "http.disconnect"}
            if scope.cancelled_caught:
                await self._abort(
                    408, "408 Request Timeout: the request body stalled and was not completed."
                )
                return {"type": "http.disconnect"}
        item = queue.popleft()
        if item is _END:
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if queue and queue[0] is _END:
            queue.popleft()
            self.body_done = True
            return {"type": "http.request", "body": item, "more_body": False}
        return {"type": "http.request", "body": item, "more_body": True}

    async def _abort(self, status: int, message: str) -> None:
        conn = self.conn
        conn.closing = True
        conn.eof = True
        if not self.started:
            self.started = True
            self.response_done = True
            await conn._send_raw(error_response(status, message))

    # -- response -------------------------------------------------------------------------------
    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self.response_done:
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.pending_head is not None:
                await self._write_first(body, more)
            elif body and not self.no_body:
                await self._write_body(body)
            if not more:
                await self._finish()
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("the response has already started")
            self.started = True
            self._prepare(message["status"], message.get("headers") or [])

    def _prepare(self, status: int, headers) -> None:
        conn = self.conn
        self.status = status
        head = self.head
        self.no_body = head.method == b"HEAD" or status in _NO_BODY or status < 200
        if conn.queue and conn.queue[0] is _END:
            pass  # the body is read completely: the connection can be reused
        elif not self.body_done:
            self.keep_alive = False  # unread request body: close after this response
        lines = [b"HTTP/1.1 %d %s" % (status, _reason(status))]
        date = None
        length = None
        pass_server = conn.limits.pass_server_header
        for name, value in headers:
            name = name.lower()
            if name in _SKIP_RESPONSE:
                if name == b"content-length" and length is None:
                    length = value
                elif name == b"date" and date is None:
                    date = value
                continue
            if name == b"server" and not pass_server:
                continue
            if _BAD_VALUE.search(value) or _BAD_VALUE.search(name):
                continue  # never let a backend's header split our response
            lines.append(name + b": " + value)
        lines.append(b"date: " + (date if date and not _BAD_VALUE.search(date) else _Date.now()))
        if length is not None:
            try:
                self.length = int(length)
                if self.length < 0 or not length.strip().isdigit():
                    raise ValueError
            except ValueError:
                self.length = None
                self.keep_alive = False
        self.pending_head = b"\r\n".join(lines)

    async def _write_first(self, body: bytes, more: bool) -> None:
        head = self.pending_head
        self.pending_head = None
        status = self.status
        if self.no_body:
            if self.length is not None and status != 204:
                head += b"\r\ncontent-length: %d" % self.length
            body = b""
        elif self.length is not None:
            head += b"\r\ncontent-length: %d" % self.length
            if len(body) > self.length:
                body = body[: self.length]
                self.keep_alive = False
        elif not more:
            self.length = len(body)
            head += b"\r\ncontent-length: %d" % self.length
        elif self.head.version == "1.1":
            self.chunked = True
            head += b"\r\ntransfer-encoding: chunked"
        else:
            self.keep_alive = False
        if not self.keep_alive or self.conn.draining:
            self.keep_alive = False
            head += b"\r\nconnection: close"
        self.sent = len(body)
        if self.chunked and body:
            body = b"%x\r\n%s\r\n" % (len(body), body)
        await self._write(head + b"\r\n\r\n" + body)

    async def _write_body(self, body: bytes) -> None:
        if self.chunked:
            await self._write(b"%x\r\n%s\r\n" % (len(body), body))
            return
        if self.length is not None:
            room = self.length - self.sent
            if len(body) > room:
                body = body[:room]
                self.keep_alive = False
        self.sent += len(body)
        if body:
            await self._write(body)

    async def _write(self, data: bytes) -> None:
        if not await self.conn._send_raw(data):
            raise trio.BrokenResourceError("the client closed the connection")

    async def _finish(self) -> None:
        if self.chunked:
            await self._write(b"0\r\n\r\n")
        elif self.length is not None and self.sent < self.length and not self.no_body:
            self.keep_alive = False  # short body: the client must see the connection end
        self.response_done = True

    def reusable(self) -> bool:
        conn = self.conn
        if self.tunnelled or conn.closing or conn.upgraded or conn.draining:
            return False
        if not self.response_done:
            return False
        if not self.keep_alive:
            return False
        queue = conn.queue
        # The request body must have been read to its end (or be complete in the queue).
        if not self.body_done:
            while queue and not isinstance(queue[0], _Head):
                if queue.popleft() is _END:
                    return True
            return False
        return True

    async def run(self, scope: dict) -> None:
        try:
            await self.conn.app(scope, self.receive, self.send)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.conn.closing = True
            return
        except Exception:
            if not self.started:
                raise  # a bug before any answer: the listener logs it once
            # The response was cut short (its cause is logged where it happened): the client
            # sees the connection end, never a wrongly framed continuation.
            self.conn.closing = True
            return
        if not self.started:
            self.keep_alive = False
            await self.conn._send_raw(
                error_response(500, "500 Internal Server Error: no response was produced.")
            )
            self.response_done = True
        elif not self.response_done:
            if self.pending_head is not None:
                await self._write_first(b"", False)
            self.keep_alive = False
            self.conn.closing = True

    # -- upgrade --------------------------------------------------------------------------------
    async def tunnel(
        self, headers: Headers, upstream: trio.abc.Stream, upstream_leftover: bytes
    ) -> None:
        """Send 101 with headers, then relay bytes both ways until either side ends."""
        from proxyd.edge.tunnel import pump

        conn = self.conn
        if not conn.upgraded or self.started:
            raise RuntimeError("not an upgrade request")
        self.started = True
        self.tunnelled = True
        lines = [b"HTTP/1.1 101 Switching Protocols"]
        for name, value in headers:
            if _BAD_VALUE.search(value) or _BAD_VALUE.search(name):
                continue
            lines.append(name + b": " + value)
        await self._write(b"\r\n".join(lines) + b"\r\n\r\n" + upstream_leftover)
        self.status = 101
        leftover, conn.leftover = conn.leftover, b""
        await pump(conn.stream, upstream, leftover)
        self.response_done = True
