"""Running an ASGI app on a hypercorn trio listener inside the caller's nursery.

serve_asgi() reports the bound addresses through task_status (port 0 picks a free port) and stops
gracefully when shutdown_event is set: it stops accepting, lets open requests finish for up to
graceful_timeout seconds, then cuts what is left. With ssl_context it serves HTTPS with exactly
that context (proxyd.tls builds it, with an SNI callback); without, plain HTTP.
"""

from __future__ import annotations

import logging
import socket
import ssl

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app


class _TlsConfig(Config):
    """A hypercorn Config that serves TLS with a ready-made SSL context (no cert files)."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__()
        self._ssl_context = ssl_context

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._ssl_context


def listener_config(
    bind: str, graceful_timeout: float, ssl_context: ssl.SSLContext | None = None
) -> Config:
    config = Config() if ssl_context is None else _TlsConfig(ssl_context)
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = logging.getLogger("proxyd.edge.hypercorn")
    config.include_server_header = False
    config.graceful_timeout = graceful_timeout
    config.keep_alive_timeout = 75
    config.backlog = 1024
    config.websocket_max_message_size = 16 * 1024 * 1024
    return config


async def serve_asgi(
    app,
    bind: str,
    *,
    shutdown_event: trio.Event,
    graceful_timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
    sock: socket.socket | None = None,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve app on bind, or on an already listening socket (inherited from the supervisor)."""
    config = listener_config(bind, graceful_timeout, ssl_context)
    sockets = None
    if sock is not None:
        sockets = Sockets(
            secure_sockets=[sock] if ssl_context else [],
            insecure_sockets=[] if ssl_context else [sock],
            quic_sockets=[],
        )
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        sockets=sockets,
        shutdown_trigger=shutdown_event.wait,
        task_status=task_status,
    )


def bound_port(binds: list[str]) -> int:
    """The port of the first address serve_asgi reported."""
    return int(binds[0].rsplit(":", 1)[1].rstrip("/"))
