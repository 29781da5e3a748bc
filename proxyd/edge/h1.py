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
- scope["proxyd.upgrade"]: the Upgrade token of an upgrade request (None otherwise); for those,
  scope["extensions"]["proxyd.tunnel"](headers, upstream_stream, upstream_leftover) sends the
  upstream's 101 and turns the connection into a byte tunnel (proxyd.edge.tunnel).
- scope["extensions"]["proxyd.splice"] on plain TCP (Linux): large Content-Length bodies move
  socket to socket with splice(2) (proxyd.edge.splice; see Exchange._extensions).
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

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httptools
import trio

from proxyd.edge.h1_exchange import Exchange
from proxyd.edge.h1_wire import (
    BODY_READ_SIZE,
    END,
    HEAD_READ_SIZE,
    EdgeLimits,
    Head,
    Refusal,
    error_response,
)

App = Callable[[dict, Any, Any], Awaitable[None]]
FAIR_EVERY = 8  # requests served on one connection between two forced yields
Headers = list[tuple[bytes, bytes]]

__all__ = ["App", "EdgeLimits", "H1Connection", "Refusal", "Registry", "error_response"]


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
        # Plain TCP (FastStream) reads without waiting; a TLS stream has no such shortcut.
        self._try_receive = getattr(stream, "try_receive", None)
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Any] = deque()
        self.head: Head | None = None
        self.head_bytes = 0
        self.header_count = 0
        self.refusal: Refusal | None = None
        self.eof = False
        self.upgraded = False
        self.leftover = b""  # bytes after an upgrade request's head
        self.closing = False

    # -- parser callbacks (synchronous; they only collect) --------------------------------------
    def on_message_begin(self) -> None:
        self.head = Head()
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
        self.queue.append(END)

    def restart_parser(self) -> None:
        """Parse from a message boundary again (after a body was spliced past the parser)."""
        self.parser = httptools.HttpRequestParser(self)
        self.head = None

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
        data = await self._receive(size)
        if not data:
            return False
        self._feed(data)
        return True

    async def _next_head(self, first: bool) -> Head | None:
        """Wait for the next request head; None when the connection should just close."""
        queue = self.queue
        while queue and not isinstance(queue[0], Head):
            queue.popleft()  # an unread body's leftovers (only when it was complete)
        if queue:
            return queue.popleft()
        if self.eof or self.upgraded:
            return None
        limits = self.limits
        registry = self.registry
        got = None
        if (
            not first
            and self._try_receive is not None
            and not registry.draining
            and not self.pending
        ):
            # A busy keep-alive client has usually sent its next request by the time the other
            # connections had their turn: then no idle timer and no readiness wait are needed.
            await trio.lowlevel.checkpoint()
            got = self._try_receive(HEAD_READ_SIZE)
            if got == b"":
                self.eof = True
                return None
        if got is None:
            # Idle: wait for the first byte (closed at once when the server drains).
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
        self.head_bytes = len(got)
        self._feed(got)
        deadline = None if queue else trio.current_time() + limits.header_timeout
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
        return await self._receive(HEAD_READ_SIZE)

    async def _receive(self, size: int) -> bytes:
        """One read from the client; b"" (and eof set) when it closed or the stream broke."""
        try:
            data = await self.stream.receive_some(size)
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
                if not served % FAIR_EVERY:
                    # Pipelined requests already parsed are served without a read, so without
                    # a yield: let other connections run now and then, whatever this client
                    # sends.
                    await trio.lowlevel.checkpoint()
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
