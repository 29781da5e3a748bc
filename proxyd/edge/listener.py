"""Running an ASGI app on a hypercorn trio listener inside the caller's nursery.

serve_asgi() reports the bound addresses through task_status (port 0 picks a free port) and stops
gracefully when shutdown_event is set: it stops accepting, lets open requests finish for up to
graceful_timeout seconds, then cuts what is left.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app


def listener_config(bind: str, graceful_timeout: float) -> Config:
    config = Config()
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
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    config = listener_config(bind, graceful_timeout)
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        shutdown_trigger=shutdown_event.wait,
        task_status=task_status,
    )


def bound_port(binds: list[str]) -> int:
    """The port of the first address serve_asgi reported."""
    return int(binds[0].rsplit(":", 1)[1])
