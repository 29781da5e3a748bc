"""One request and its response on an h1 connection (proxyd.edge.h1): the scope the shared
request path sees, the body as the app reads it (100-continue, stalls, disconnects), the framing
proxyd computes for what it sends, and the upgrade to a byte tunnel.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from proxyd.edge import splice
from proxyd.edge.fastsock import FastStream
from proxyd.edge.h1_wire import (
    BAD_VALUE,
    BODY_STALLED,
    CONNECT_REFUSED,
    END,
    HEAD_READ_SIZE,
    NO_BODY,
    SKIP_RESPONSE,
    Date,
    Head,
    Refusal,
    absolute_form,
    error_response,
    status_line,
    valid_host,
)
from proxyd.edge.tunnel import pump

if TYPE_CHECKING:
    from proxyd.edge.h1 import H1Connection

Headers = list[tuple[bytes, bytes]]


class Exchange:
    """One request and its response on an H1Connection. It also counts what the request log
    records (bytes_in, bytes_out, status, first_byte), so the log's meter need not wrap its
    receive and send: the scope names it as "proxyd.meter" (proxyd.logs.hotpath)."""

    __slots__ = (
        "body_done",
        "bytes_in",
        "bytes_out",
        "chunked",
        "conn",
        "continue_sent",
        "first_byte",
        "head",
        "keep_alive",
        "length",
        "no_body",
        "pending_head",
        "raw_body",
        "response_done",
        "sent",
        "started",
        "status",
        "tunnelled",
    )

    def __init__(self, conn: H1Connection, head: Head) -> None:
        self.conn = conn
        self.head = head
        self.keep_alive = head.keep_alive and not conn.registry.draining
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
        self.bytes_in = 0
        self.bytes_out = 0
        self.first_byte = 0.0
        self.tunnelled = False
        self.raw_body = True  # no body byte handed out yet: the rest may be spliced

    # -- request --------------------------------------------------------------------------------
    def scope(self) -> dict:
        head = self.head
        if head.version not in ("1.1", "1.0"):
            raise Refusal(505, "505 HTTP Version Not Supported: use HTTP/1.1.")
        method = head.method.decode("ascii")
        if method == "CONNECT":
            raise Refusal(405, CONNECT_REFUSED)
        headers = head.headers
        hosts: list[bytes] = []
        expect: list[bytes] = []
        te = cl = False
        for name, value in headers:  # one pass: the framing and routing fields
            if name == b"host":
                hosts.append(value)
            elif name == b"transfer-encoding":
                te = True
            elif name == b"content-length":
                cl = True
            elif name == b"expect":
                expect.append(value)
        if te and head.version == "1.0":
            raise Refusal(400, "400 Bad Request: Transfer-Encoding is not allowed in HTTP/1.0.")
        if expect:
            if len(expect) > 1 or expect[0].lower() != b"100-continue":
                raise Refusal(400, "400 Bad Request: the only Expect accepted is 100-continue.")
            head.expect = True
        target = bytes(head.target)
        if b"#" in target:
            raise Refusal(400, "400 Bad Request: the request target contains a fragment.")
        if head.upgrade is not None and (te or cl):
            raise Refusal(400, "400 Bad Request: an upgrade request cannot carry a body.")
        if target[:1] == b"/":
            path, _, query = target.partition(b"?")
        elif target == b"*":
            if method != "OPTIONS":
                raise Refusal(400, "400 Bad Request: the asterisk target is for OPTIONS only.")
            path, query = b"*", b""
        else:
            authority, path, query = absolute_form(target)
            if hosts and len(hosts) > 1:
                raise Refusal(400, "400 Bad Request: the request has more than one Host header.")
            headers = [(n, v) for n, v in headers if n != b"host"]
            headers.append((b"host", authority))
            hosts = [authority]
        if len(hosts) > 1:
            raise Refusal(400, "400 Bad Request: the request has more than one Host header.")
        if hosts:
            if not valid_host(hosts[0]):
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
            "proxyd.meter": self,
            "extensions": self._extensions(),
        }

    def _extensions(self) -> dict:
        """proxyd.tunnel for an upgrade request (nothing else: an idle tunnel holds its scope
        for hours); otherwise proxyd.splice on plain TCP where splice(2) exists: the app may
        then send {"type": "proxyd.response.splice", "count": n, "relay": fn} (the rest of a
        Content-Length body, moved by `await fn(client_socket)`) and call
        ["request_body"](upstream_send, upstream_socket) to send a Content-Length request body
        (see splice_request_body)."""
        if self.head.upgrade is not None:
            return {"proxyd.tunnel": self.tunnel}
        if splice.AVAILABLE and type(self.conn.stream) is FastStream:
            return {"proxyd.splice": {"request_body": self.splice_request_body}}
        return {}

    async def receive(self) -> dict:
        conn = self.conn
        self.raw_body = False
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
                await self._abort(408, BODY_STALLED)
                return {"type": "http.disconnect"}
        item = queue.popleft()
        if item is END:
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        self.bytes_in += len(item)
        if queue and queue[0] is END:
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
            body = message.get("body", b"")
            self.bytes_out += len(body)
            if self.response_done:
                return
            more = message.get("more_body", False)
            if self.pending_head is not None:
                await self._write_first(body, more)
            elif body and not self.no_body:
                await self._write_body(body)
            if not more:
                if self.chunked:
                    await self._finish()
                else:
                    self._finish_plain()
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("the response has already started")
            self.started = True
            self.first_byte = time.perf_counter()
            self._prepare(message["status"], message.get("headers") or [])
        elif kind == "proxyd.response.splice":
            self.bytes_out += message["count"]
            await self._splice(message["count"], message["relay"])

    def _prepare(self, status: int, headers) -> None:
        conn = self.conn
        self.status = status
        head = self.head
        self.no_body = head.method == b"HEAD" or status in NO_BODY or status < 200
        if conn.queue and conn.queue[0] is END:
            pass  # the body is read completely: the connection can be reused
        elif not self.body_done:
            self.keep_alive = False  # unread request body: close after this response
        lines = [status_line(status)]
        date = None
        length = None
        pass_server = conn.limits.pass_server_header
        for name, value in headers:
            name = name.lower()
            if name in SKIP_RESPONSE:
                if name == b"content-length" and length is None:
                    length = value
                elif name == b"date" and date is None:
                    date = value
                continue
            if name == b"server" and not pass_server:
                continue
            lines.append(name + b": " + value)
        date_line = b"date: " + date if date else None
        if date_line is not None:
            lines.append(date_line)
        if BAD_VALUE.search(b"".join(lines)):  # one scan; the per-field one only when needed
            # Never let a backend's header split our response: drop the fields with CR, LF or
            # other control bytes (the status line has none); a dropped Date is made here.
            lines = [line for line in lines if not BAD_VALUE.search(line)]
            if lines[-1] is not date_line:
                date_line = None
        if date_line is None:
            lines.append(b"date: " + Date.now())
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
        if not self.keep_alive or self.conn.registry.draining:
            self.keep_alive = False
            head += b"\r\nconnection: close"
        self.sent = len(body)
        if self.chunked and body:
            body = b"%x\r\n%s\r\n" % (len(body), body)
        if not await self.conn._send_raw(head + b"\r\n\r\n" + body):  # _write, inlined
            raise trio.BrokenResourceError("the client closed the connection")

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

    async def _splice(self, count: int, relay) -> None:
        """Send the last count bytes of a Content-Length body: relay(client_socket) moves them
        from another socket straight into the client's (proxyd.edge.splice)."""
        if self.response_done or not self.started:
            raise RuntimeError("no response body to splice into")
        if self.no_body or self.length is None or self.length - self.sent != count:
            raise RuntimeError("a spliced body must be the exact rest of a Content-Length body")
        if self.pending_head is not None:
            await self._write_first(b"", True)
        await relay(self.conn.stream.socket, self.conn.limits.send_timeout)
        self.sent += count

    async def splice_request_body(
        self, upstream_send, upstream_socket, send_timeout: float | None = None
    ) -> int:
        """Send this request's Content-Length body upstream: the bytes already parsed through
        upstream_send, the rest spliced from the client's socket into upstream_socket. Returns
        the number of bytes sent. The relay moves exactly the body's remaining bytes, so the
        next byte on the socket starts the next request: a fresh parser takes over from there
        and the connection stays usable. Raises splice.SourceEnded when the client hangs up, or
        stalls for EDGE_BODY_TIMEOUT (it then gets 408), before the whole body arrived."""
        conn = self.conn
        queue = conn.queue
        if not self.raw_body or self.body_done:
            raise RuntimeError("the request body was already read")
        self.raw_body = False
        length = None
        for name, value in self.head.headers:
            if name == b"content-length":
                length = int(value)  # llhttp accepted exactly one valid Content-Length
        if length is None:
            raise RuntimeError("only a Content-Length body can be spliced")
        parsed = []
        while queue and queue[0] is not END and not isinstance(queue[0], Head):
            parsed.append(queue.popleft())
        have = sum(len(chunk) for chunk in parsed)
        if queue and queue[0] is END:  # the whole body arrived with the head
            queue.popleft()
            self.body_done = True
            for chunk in parsed:
                await upstream_send(chunk)
            return have
        rest = length - have
        if rest <= 0 or queue:
            raise RuntimeError("the parsed body does not match its Content-Length")
        keep_alive, self.keep_alive = self.keep_alive, False  # until the whole body has passed
        if self.head.expect and not self.continue_sent and not self.started and not parsed:
            self.continue_sent = True
            await conn._send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        for chunk in parsed:
            await upstream_send(chunk)
        del parsed
        try:
            await splice.relay(
                conn.stream.socket,
                upstream_socket,
                rest,
                idle_timeout=conn.limits.body_timeout,
                send_timeout=send_timeout,  # the upstream taking nothing: SendTimeout
            )
        except splice.SourceTimeout:
            await self._abort(408, BODY_STALLED)
            raise splice.SourceEnded("the request body stalled") from None
        except splice.SourceEnded:
            conn.eof = True
            conn.closing = True
            raise
        conn.restart_parser()  # the old one still waits for the body it never saw
        self.keep_alive = keep_alive
        self.body_done = True
        return length

    async def _write(self, data: bytes) -> None:
        if not await self.conn._send_raw(data):
            raise trio.BrokenResourceError("the client closed the connection")

    async def _finish(self) -> None:
        if self.chunked:
            await self._write(b"0\r\n\r\n")
        self._finish_plain()

    def _finish_plain(self) -> None:
        """The end of a response without chunked framing (nothing left to write)."""
        if (
            not self.chunked
            and self.length is not None
            and self.sent < self.length
            and not self.no_body
        ):
            self.keep_alive = False  # short body: the client must see the connection end
        self.response_done = True

    def reusable(self) -> bool:
        conn = self.conn
        if self.tunnelled or conn.closing or conn.upgraded or conn.registry.draining:
            return False
        if not self.response_done:
            return False
        if not self.keep_alive:
            return False
        queue = conn.queue
        # The request body must have been read to its end (or be complete in the queue).
        if not self.body_done:
            while queue and not isinstance(queue[0], Head):
                if queue.popleft() is END:
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
        conn = self.conn
        if not conn.upgraded or self.started:
            raise RuntimeError("not an upgrade request")
        self.started = True
        self.tunnelled = True
        lines = [b"HTTP/1.1 101 Switching Protocols"]
        for name, value in headers:
            if BAD_VALUE.search(value) or BAD_VALUE.search(name):
                continue
            lines.append(name + b": " + value)
        await self._write(b"\r\n".join(lines) + b"\r\n\r\n" + upstream_leftover)
        self.status = 101
        leftover, conn.leftover = conn.leftover, b""
        # A tunnel can idle for hours: keep nothing of the HTTP layer alive while it does.
        conn.parser = None
        conn.queue.clear()
        del lines
        await pump(conn.stream, upstream, leftover)
        self.response_done = True
