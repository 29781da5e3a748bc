"""`proxyd serve`: the root trio tree.

root nursery
 ├─ embedded redis-server (only when REDIS_URL is unset)
 └─ coredis client
     ├─ services nursery: proxy manager (a nursery per proxy), event consumer, reconcile loop
     └─ listeners nursery: API server (127.0.0.1:API_PORT), public HTTP listener, signal watcher

SIGINT/SIGTERM set the shutdown event: listeners stop accepting and give open requests
SHUTDOWN_TIMEOUT seconds, then the services are cancelled and Redis is closed (the embedded one is
stopped last, after a final AOF flush). Background loops that fail are logged and restarted with
a growing delay; a failure while starting stops proxyd with one clear sentence.
"""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Awaitable, Callable

import trio
from coredis.exceptions import RedisError

from proxyd import __version__
from proxyd.api.app import create_api_app
from proxyd.api.context import ApiContext
from proxyd.config import Settings
from proxyd.docker.runtime import DockerRuntime
from proxyd.edge.dispatcher import Dispatcher
from proxyd.edge.h1 import EdgeLimits
from proxyd.edge.listener import serve_asgi
from proxyd.edge.manager import ProxyManager
from proxyd.edge.server import EdgeListener, listening_socket
from proxyd.events.bus import EventBus
from proxyd.events.consumer import consume_events
from proxyd.logs.writer import RequestLog
from proxyd.oauth.keys import current_signing_key
from proxyd.oauth.tokens import TokenVerifier
from proxyd.runtime.children import watch_parent
from proxyd.runtime.defaults import install_defaults
from proxyd.runtime.errors import StartupError, find_exception
from proxyd.runtime.workers import bind_problem, inherited_sockets, is_worker
from proxyd.store.embedded import run_embedded_redis
from proxyd.store.redis import connect, describe
from proxyd.store.repository import Store
from proxyd.tls.manager import CertManager

log = logging.getLogger("proxyd")


async def supervise(
    name: str,
    run: Callable[..., Awaitable[None]],
    *,
    max_delay: float = 10.0,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a background loop forever, restarting it with backoff when it fails.

    run(task_status=...) gets the caller's task_status on the first attempt only.
    """
    delay = 0.2
    status = task_status
    while True:
        try:
            await run(task_status=status)
            return
        except Exception:
            log.exception("%s failed; restarting in %.1fs", name, delay)
        status = trio.TASK_STATUS_IGNORED
        await trio.sleep(delay)
        delay = min(delay * 2, max_delay)


async def _wait_for_redis(client, url: str, timeout: float = 10.0) -> None:
    with trio.move_on_after(timeout):
        while True:
            try:
                if await client.ping():
                    return
            except (OSError, RedisError) as exc:  # connection refused, auth error, ...
                last = exc
            await trio.sleep(0.2)
    raise StartupError(
        f"cannot reach Redis at {describe(url)} ({type(last).__name__}: {last}); "
        "check REDIS_URL, or leave it empty to use the embedded redis-server."
    )


async def _listen(
    nursery, app, bind: str, what: str, setting: str, shutdown, settings, ssl_context=None
) -> list:
    try:
        return await nursery.start(
            lambda task_status: serve_asgi(
                app,
                bind,
                sock=inherited_sockets().get(what.lower()),  # set when we are a worker
                shutdown_event=shutdown,
                graceful_timeout=settings.shutdown_timeout,
                ssl_context=ssl_context,
                task_status=task_status,
            )
        )
    except BaseException as raised:
        exc = find_exception(raised, (OSError,))
        if exc is None:
            raise
        raise StartupError(bind_problem(what, bind, setting, exc)) from None


async def _listen_edge(
    nursery,
    app,
    host: str,
    port: int,
    what: str,
    setting: str,
    shutdown,
    settings,
    ssl_context=None,
) -> list:
    """Start a public listener on the strict h1 server (h2 through hypercorn's protocol)."""
    sock = inherited_sockets().get(what.lower())  # set when we are a worker
    if sock is None:
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise StartupError(bind_problem(what, _bind(host, port), setting, exc)) from None
    listener = EdgeListener(
        app,
        EdgeLimits.from_settings(settings),
        ssl_context=ssl_context,
        graceful_timeout=settings.shutdown_timeout,
        http2=settings.edge_http2,
    )
    return await nursery.start(listener.serve, sock, shutdown)


async def serve(settings: Settings, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run proxyd until SIGINT/SIGTERM (or cancellation). task_status gets the bound ports."""
    async with trio.open_nursery() as root:
        redis_url = settings.redis_url
        if not redis_url:
            redis_url = await root.start(run_embedded_redis, settings.data_path)
        redis = connect(redis_url)
        async with redis:
            await _wait_for_redis(redis, redis_url)
            ports = await _run_with_redis(settings, redis, redis_url, task_status)
        root.cancel_scope.cancel()
    log.info("proxyd stopped (%s)", ports)


async def _run_with_redis(settings: Settings, redis, redis_url: str, task_status) -> dict:
    store = Store(redis, settings.event_stream_maxlen)
    bus = EventBus()
    created = await install_defaults(store)
    if created:
        log.info("first start: created %s", ", ".join(created))
    await current_signing_key(redis, settings.oauth_jwt_private_key_b64)
    verifier = TokenVerifier.from_settings(redis, settings)
    manager = ProxyManager(settings, store, api_app=None, bus=bus)
    context = ApiContext(settings, store, manager, verifier)
    # TLS capability: build the certificate manager here and set context.certs.
    certs = CertManager(settings, store, bus, lambda host: _proxy_of(manager, host))
    context.certs = certs
    dispatcher = Dispatcher(manager, acme=certs.http01)
    # Logging capability: build the request log here and set context.request_log.
    request_log = RequestLog(settings, redis_url)
    context.request_log = request_log
    manager.request_log = request_log if settings.request_logging else None
    # Docker capability: services, ports and token gateways; the edge resolves service targets
    # through docker.lookup (in memory).
    docker = DockerRuntime(settings, store, bus)
    context.docker = docker
    manager.service_lookup = docker.lookup
    manager.api_app = create_api_app(context)
    shutdown = trio.Event()
    ports: dict = {}
    async with trio.open_nursery() as services:
        await services.start(manager.run)
        # TLS capability: start the certificate store loader and the renewal loop here.
        await services.start(functools.partial(supervise, "certificate manager", certs.run))
        services.start_soon(functools.partial(supervise, "renewal loop", certs.renew_forever))
        await services.start(functools.partial(supervise, "docker runtime", docker.run))
        # Logging capability: start the request-log writer here.
        if settings.request_logging:
            await services.start(
                functools.partial(supervise, "request-log writer", request_log.run)
            )
        await services.start(
            functools.partial(
                supervise,
                "event consumer",
                functools.partial(consume_events, redis, settings.instance, manager.apply),
            )
        )
        services.start_soon(
            functools.partial(supervise, "reconcile loop", manager.reconcile_forever)
        )
        async with trio.open_nursery() as listeners:
            api = await _listen(
                listeners,
                manager.api_app,
                f"127.0.0.1:{settings.api_port}",
                "API",
                "API_PORT",
                shutdown,
                settings,
            )
            http = await _listen_edge(
                listeners,
                dispatcher,
                settings.server_host,
                settings.http_port,
                "HTTP",
                "HTTP_PORT",
                shutdown,
                settings,
            )
            ports = {"api": _port(api), "http": _port(http)}
            # TLS capability: start the HTTPS listener here and add ports["https"].
            https = await _listen_edge(
                listeners,
                dispatcher,
                settings.server_host,
                settings.https_port,
                "HTTPS",
                "HTTPS_PORT",
                shutdown,
                settings,
                ssl_context=certs.sni.listener_context,
            )
            ports["https"] = dispatcher.https_port = _port(https)
            log.info("https on %s:%s", settings.server_host, ports["https"])
            listeners.start_soon(_wait_for_stop, shutdown)
            log.info(
                "proxyd %s ready: http on %s:%s, API on http://127.0.0.1:%s/graphql, redis %s, "
                "instance %s, %d proxies",
                __version__,
                settings.server_host,
                ports["http"],
                ports["api"],
                describe(redis_url),
                settings.instance,
                len(manager.proxies),
            )
            log.info(
                "management token: run `proxyd token issue --scope admin` with the same "
                "REDIS_URL/PROXYD_DATA_DIR"
            )
            task_status.started(ports)
        log.info("listeners closed; stopping background tasks")
        services.cancel_scope.cancel()
    return ports


def _proxy_of(manager: ProxyManager, host: str):
    app = manager.proxies.get(host)
    return None if app is None else app.proxy


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(binds: list[str]) -> int:
    return int(binds[0].rsplit(":", 1)[1])


async def _wait_for_stop(shutdown: trio.Event) -> None:
    """Set shutdown on SIGINT/SIGTERM or, in a worker, when the supervisor is gone; then stop
    watching, so the listeners' nursery can close."""
    async with trio.open_nursery() as watchers:
        watchers.start_soon(_watch_signals, shutdown)
        if is_worker():
            watchers.start_soon(watch_parent, shutdown)
        await shutdown.wait()
        watchers.cancel_scope.cancel()


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s: draining", signal.Signals(signum).name)
            shutdown.set()
            return
