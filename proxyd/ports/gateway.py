"""Token gateways: for each service port that has an access token, proxyd (not Docker) listens on
the port's bind address and host port and forwards to the container only requests that carry
`Authorization: Bearer <token>`. The token is compared by its SHA-256 in constant time, stripped
before the request goes to the container, and never logged (the listener has no access log).

Forwarding reuses the edge's upstream side (proxyd.edge.forward, proxyd.edge.upstream); each
gateway is one hypercorn listener in the GatewaySet's nursery, started and stopped as services'
ports change (sync()).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import attrs
import trio

from proxyd.config import Settings
from proxyd.edge.forward import forward_http, send_error
from proxyd.edge.headers import client_ip, header_value, upstream_request_headers
from proxyd.edge.listener import serve_asgi
from proxyd.edge.upstream import new_pool, parse_target
from proxyd.store.service_models import DockerService, ServiceDown, token_hash

log = logging.getLogger("proxyd.ports.gateway")

RETRY = 5.0  # seconds between attempts to take over a tokened port

Resolver = Callable[[str, int], "str | ServiceDown | None"]


@attrs.frozen
class GatewaySpec:
    service_name: str
    port_name: str
    container_port: int
    host_port: int
    bind_address: str
    token_hash: str


def specs_for(services: list[DockerService]) -> dict[int, GatewaySpec]:
    wanted = {}
    for service in services:
        for port in service.port_configs:
            if port.require_token and port.host_port:
                wanted[port.host_port] = GatewaySpec(
                    service.service_name,
                    port.name,
                    port.container_port,
                    port.host_port,
                    port.bind_address,
                    port.source_token_hash or "",
                )
    return wanted


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    value = header_value(headers, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class TokenGateway:
    """The ASGI app of one tokened port."""

    def __init__(self, spec: GatewaySpec, settings: Settings, resolve: Resolver) -> None:
        self.spec = spec
        self.settings = settings
        self.resolve = resolve
        self.pool = new_pool(
            connect_timeout=settings.proxy_connect_timeout,
            request_timeout=settings.proxy_request_timeout,
            keepalive=settings.upstream_keepalive,
        )

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        spec = self.spec
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        token = bearer_token(scope["headers"])
        if token is None or not hmac.compare_digest(token_hash(token), spec.token_hash):
            await send_error(
                send,
                401,
                "401 Unauthorized: this port needs its access token "
                "(Authorization: Bearer <token>).",
                [(b"www-authenticate", b'Bearer realm="proxyd-port"')],
            )
            return
        target = self.resolve(spec.service_name, spec.container_port)
        if isinstance(target, ServiceDown):
            await send_error(
                send, 503, f"503 Service Unavailable: service {target.name} is {target.status}."
            )
            return
        if target is None:
            await send_error(
                send, 502, f"502 Bad Gateway: service {spec.service_name} has no address."
            )
            return
        parsed = parse_target(target)
        peer = scope["client"][0] if scope.get("client") else None
        headers = upstream_request_headers(
            [(k, v) for k, v in scope["headers"] if k != b"authorization"],
            peer=peer,
            client=client_ip(peer, scope["headers"], ()),
            scheme="http",
            host="",
            trusted=(),
            preserve_host=False,
            upstream_host=parsed.netloc,
        )
        await forward_http(
            scope,
            receive,
            send,
            pool=self.pool,
            key=parsed.key,
            target=parsed.request_target(
                scope.get("raw_path") or scope["path"].encode(), scope.get("query_string", b"")
            ),
            headers=headers,
            label=f"{spec.service_name}:{spec.port_name}",
        )


class GatewaySet:
    """Runs one TokenGateway per tokened port; sync() says which ports should be served."""

    def __init__(self, settings: Settings, resolve: Resolver) -> None:
        self.settings = settings
        self.resolve = resolve
        self.wanted: dict[int, GatewaySpec] = {}
        self.running: dict[int, tuple[GatewaySpec, trio.CancelScope]] = {}
        self.serving: set[int] = set()
        self._changed = trio.Event()

    def sync(self, services: list[DockerService]) -> None:
        self.wanted = specs_for(services)
        self._changed.set()

    def update(self, service: DockerService | None, name: str) -> None:
        """Replace the wanted gateways of one service (None: it was deleted)."""
        wanted = {p: s for p, s in self.wanted.items() if s.service_name != name}
        if service is not None:
            wanted.update(specs_for([service]))
        self.wanted = wanted
        self._changed.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                for port, (spec, scope) in list(self.running.items()):
                    if self.wanted.get(port) != spec:
                        scope.cancel()
                        del self.running[port]
                for port, spec in self.wanted.items():
                    if port not in self.running:
                        scope = trio.CancelScope()
                        self.running[port] = (spec, scope)
                        nursery.start_soon(self._serve, spec, scope)
                await self._changed.wait()
                self._changed = trio.Event()

    async def _serve(self, spec: GatewaySpec, scope: trio.CancelScope) -> None:
        """Serve spec until its scope is cancelled. When the port cannot be bound (another
        proxyd process on this host serves it), try again every RETRY seconds: whichever
        process is left takes over."""
        bind = f"{spec.bind_address}:{spec.host_port}"
        failures = 0
        with scope:
            while True:
                try:
                    await serve_asgi(
                        TokenGateway(spec, self.settings, self.resolve),
                        bind,
                        shutdown_event=trio.Event(),
                        graceful_timeout=1.0,
                        task_status=_Started(self.serving, spec.host_port),
                    )
                except Exception as exc:  # noqa: BLE001 - bind failed or the listener crashed
                    level = logging.INFO if failures == 0 else logging.DEBUG
                    log.log(
                        level,
                        "token gateway for %s:%s on %s is not serving here (%s); retrying",
                        spec.service_name,
                        spec.port_name,
                        bind,
                        _reason(exc),
                    )
                finally:
                    self.serving.discard(spec.host_port)
                failures += 1
                await trio.sleep(RETRY)


def _reason(exc: BaseException) -> str:
    """The innermost error of a (possibly grouped) exception, as one phrase."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class _Started:
    def __init__(self, serving: set[int], port: int) -> None:
        self.serving, self.port = serving, port

    def started(self, value=None) -> None:
        self.serving.add(self.port)
        log.info("token gateway listening on port %s", self.port)
