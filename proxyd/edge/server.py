"""The public listeners: accept loops for HTTP and HTTPS that hand each connection to the strict
h1 server (proxyd.edge.h1), or to proxyd.edge.h2_server for ALPN h2 and h2c prior knowledge.

Both protocols call the same ASGI-shaped application (the Dispatcher), so proxy selection, auth,
routes, the header policy and logging have one implementation.

Shutdown: when shutdown_event is set the listener stops accepting, idle keep-alive connections
close at once, and requests in flight get graceful_timeout seconds to finish before they are cut.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl

import trio

from proxyd.edge.fastsock import FastStream, address
from proxyd.edge.h1 import App, EdgeLimits, H1Connection, Registry, error_response
from proxyd.edge.h2_server import H2Server
from proxyd.edge.tls_stream import TLSStream

log = logging.getLogger("proxyd.edge.server")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_OFF = "505 HTTP Version Not Supported: HTTP/2 is turned off here (EDGE_HTTP2); use HTTP/1.1."
_ACCEPT_RETRY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


class EdgeListener:
    """One public listener (plain or TLS) serving app."""

    def __init__(
        self,
        app: App,
        limits: EdgeLimits,
        *,
        ssl_context: ssl.SSLContext | None = None,
        graceful_timeout: float = 5.0,
        http2: bool = True,
    ) -> None:
        self.app = app
        self.limits = limits
        self.ssl_context = ssl_context
        self.graceful_timeout = graceful_timeout
        self.registry = Registry()
        # A connection holds a slot from before its accept to its close: past the cap, new
        # connections wait in the kernel's listen queue (bounded memory and descriptors).
        self.slots = trio.Semaphore(limits.max_connections)
        self.h2 = H2Server(app, limits, graceful_timeout) if http2 else None
        self.scheme = "https" if ssl_context is not None else "http"

    async def serve(
        self,
        sock: socket.socket,
        shutdown_event: trio.Event,
        *,
        task_status=trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept on sock (already bound and listening) until shutdown_event, then drain."""
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        async with trio.open_nursery() as handlers:
            async with trio.open_nursery() as acceptor:
                acceptor.start_soon(self._accept, listener, handlers)
                task_status.started([f"{self.scheme}://{shown}:{port}"])
                await shutdown_event.wait()
                acceptor.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await listener.aclose()
            self.registry.drain()
            handlers.cancel_scope.deadline = trio.current_time() + self.graceful_timeout

    async def _accept(self, listener: trio.SocketListener, handlers: trio.Nursery) -> None:
        while True:
            await self.slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                self.slots.release()
                if exc.errno in _ACCEPT_RETRY:
                    log.warning("accept failed (%s); retrying shortly", exc.strerror)
                    await trio.sleep(0.1)
                    continue
                raise
            except BaseException:
                self.slots.release()
                raise
            handlers.start_soon(self._connection, stream)

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            await self._serve_connection(stream)
        finally:
            self.slots.release()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        try:
            sock = stream.socket
            client = address(sock.getpeername())
            server = address(sock.getsockname())
        except OSError:
            await stream.aclose()
            return
        try:
            if self.ssl_context is not None:
                await self._tls(stream, client, server)
            else:
                await self._plain(stream, client, server)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
            pass
        except Exception:
            log.exception("connection from %s failed", client[0] if client else "?")
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await stream.aclose()

    async def _plain(self, stream: trio.SocketStream, client, server) -> None:
        first = b""
        with trio.move_on_after(self.limits.header_timeout):
            while len(first) < len(H2_PREFACE):
                data = await stream.receive_some(64 * 1024)
                if not data:
                    return
                first += data
                if not H2_PREFACE.startswith(first[: len(H2_PREFACE)]):
                    break
        if not first:
            return
        if first.startswith(H2_PREFACE):
            if self.h2 is None:
                await stream.send_all(error_response(505, H2_OFF))
                return
            await self.h2.serve(FastStream(stream, self.limits.send_timeout), first)
            return
        if H2_PREFACE.startswith(first):  # a truncated preface that timed out
            await stream.send_all(error_response(408, "408 Request Timeout."))
            return
        conn = H1Connection(
            FastStream(stream, self.limits.send_timeout),
            self.app,
            self.limits,
            scheme="http",
            client=client,
            server=server,
            registry=self.registry,
            initial=first,
        )
        await conn.serve()

    async def _tls(self, stream: trio.SocketStream, client, server) -> None:
        tls = TLSStream(FastStream(stream, self.limits.send_timeout), self.ssl_context)
        # Bounded like a request head (nginx does the same with client_header_timeout).
        with trio.move_on_after(self.limits.header_timeout) as scope:
            await tls.do_handshake()
        if scope.cancelled_caught:
            return
        if self.h2 is not None and tls.selected_alpn_protocol() == "h2":
            await self.h2.serve(tls)
            return
        conn = H1Connection(
            tls,
            self.app,
            self.limits,
            scheme="https",
            client=client,
            server=server,
            registry=self.registry,
        )
        await conn.serve()


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A bound, listening TCP socket (SO_REUSEADDR; IPv6 when host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock
