"""The authorization server as a quart Blueprint, registered on the internal API app (so it is
reached on API_PORT, through the `localhost` proxy, and through any proxy whose target is
internal://api, such as auth.example.com)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

import trio
from quart import Blueprint

from proxyd.oauth import authorize, device, introspect, metadata, registration, revoke, token
from proxyd.oauth.github import GitHub
from proxyd.oauth.http import oauth_error
from proxyd.oauth.scopes import nobody_manages
from proxyd.oauth.server import AuthServer, OAuthFailure
from proxyd.oauth.store import OAuthStore
from proxyd.oauth.tokens import TokenVerifier


class Parts(Protocol):
    """What the authorization server is built from (the API's context has these)."""

    settings: Any
    store: Any  # proxyd.store.repository.Store: its Redis client and event writer
    verifier: TokenVerifier
    manager: Any  # has .proxies: hostname -> server object with .proxy


def auth_server(context: Parts) -> AuthServer:
    settings = context.settings
    proxies: Callable[[], dict] = lambda: context.manager.proxies

    def proxy_of(hostname: str) -> Any:
        app = proxies().get(hostname)
        return app.proxy if app is not None else None

    return AuthServer(
        settings=settings,
        store=OAuthStore(context.store.redis),
        events=context.store,
        verifier=context.verifier,
        proxy_of=proxy_of,
        github=GitHub(settings.github_base_url, settings.github_api_url),
    )


log = logging.getLogger("proxyd.oauth")
GRANT_HINT = (
    "nobody can get the management scopes admin or user yet: set OAUTH_ADMIN_USERS "
    "(and OAUTH_USER_USERS for read-only access) to GitHub logins and restart, or mint a token "
    "with `proxyd token issue --scope admin`"
)


def oauth_blueprint(context: Parts) -> Blueprint:
    server = auth_server(context)
    if nobody_manages(context.settings):
        log.warning(GRANT_HINT)
    bp = Blueprint("oauth", __name__)
    for module in (metadata, registration, authorize, token, device, revoke, introspect):
        module.register(bp, server)

    @bp.errorhandler(OAuthFailure)
    async def failure(exc: OAuthFailure) -> Any:
        headers = dict(exc.headers)
        if exc.status == 401 and exc.error == "invalid_client":
            headers["WWW-Authenticate"] = 'Basic realm="proxyd"'
        return oauth_error(exc.error, exc.description, exc.status, headers)

    return bp


# A request that has waited this long makes proxyd ping Redis, and the ping may take as long
# again: a Redis that hangs turns into a 503 within twice this (a GitHub round trip, which
# waits on GitHub and not on Redis, goes on).
HUNG_REDIS_PROBE = 1.5


class RedisHung(TimeoutError):
    """Redis did not answer a ping while an authorization-server request was waiting."""


def bound_redis_waits(app: Any, redis: Any, prefix: str = "oauth.") -> None:
    """Wrap every view of the authorization server (registered on app) so that a Redis that
    hangs ends the request with RedisHung (the app answers 503 temporarily_unavailable), instead
    of holding the client until it gives up."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith(prefix):
            app.view_functions[endpoint] = _bounded(view, redis)


def _bounded(view: Callable, redis: Any) -> Callable:
    @functools.wraps(view)
    async def run(*args: Any, **kwargs: Any) -> Any:
        hung = False
        result: Any = None
        error: Exception | None = None

        async def watch(cancel_scope: trio.CancelScope) -> None:
            nonlocal hung
            await trio.sleep(HUNG_REDIS_PROBE)
            answered = False
            with trio.move_on_after(HUNG_REDIS_PROBE):
                try:
                    await redis.ping()
                    answered = True  # the request is slow for another reason: it goes on
                except Exception:  # noqa: BLE001 - any failure means Redis is not answering
                    answered = False
            if answered:
                return
            hung = True
            cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, nursery.cancel_scope)
            try:
                result = await view(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the nursery
                error = exc
            nursery.cancel_scope.cancel()
        if hung:
            raise RedisHung(f"Redis did not answer within {2 * HUNG_REDIS_PROBE:g} s")
        if error is not None:
            raise error
        return result

    return run
