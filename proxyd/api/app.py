"""The management app (quart-trio): GraphQL over HTTP (POST /graphql), the GraphiQL playground
(GET /graphql), GraphQL subscriptions over graphql-transport-ws (websocket /graphql), /health,
and the MCP endpoint /mcp (proxyd.mcp).

Every GraphQL request needs a bearer token proxyd signed: a missing or invalid one gets HTTP 401
with a GraphQL error coded UNAUTHENTICATED, before anything is executed. Then the per-token rate
limit (429, RATE_LIMITED) and the operation limits of proxyd.api.limits apply (QUERY_TOO_COMPLEX),
and the operation has GRAPHQL_TIMEOUT seconds, authentication included (TIMEOUT, or 503
SERVICE_UNAVAILABLE when Redis is not answering). /health answers within HEALTH_TIMEOUT seconds
and reports Redis unreachable with 503. No route answers HTML errors: an unexpected exception is
a JSON error with one sentence (503 when it means Redis is unreachable).
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

import attrs
import trio
from ariadne import load_schema_from_path, make_executable_schema
from graphql import GraphQLSchema
from quart import Response, request, websocket
from quart_trio import QuartTrio

from proxyd.api.context import ApiContext
from proxyd.api.execution import execute
from proxyd.api.faults import (
    REDIS_UNAVAILABLE_MESSAGE,
    SERVICE_UNAVAILABLE,
    redis_unavailable,
    unavailable_response,
)
from proxyd.api.graphql_ws import serve_graphql_ws
from proxyd.api.limits import Limits, RateLimiter, rate_key, retry_after
from proxyd.api.resolvers import health_report
from proxyd.api.webui import playground_response, webui_blueprint
from proxyd.logs.metrics import METRICS_CONTENT_TYPE, render_metrics
from proxyd.mcp.endpoint import McpEndpoint
from proxyd.oauth.blueprint import bound_redis_waits, oauth_blueprint
from proxyd.oauth.tokens import InvalidToken

log = logging.getLogger("proxyd.api")

SCHEMA_PATH = Path(__file__).with_name("schema.graphql")
HEALTH_TIMEOUT = 0.8  # seconds /health waits for Redis before reporting it unreachable
STATUS_OF_CODE = {
    "SERVICE_UNAVAILABLE": 503,
    "RATE_LIMITED": 429,
    "TIMEOUT": 504,
    "QUERY_TOO_COMPLEX": 400,
}


class AuthFailed(Exception):
    def __init__(self, message: str, code: str = "UNAUTHENTICATED") -> None:
        super().__init__(message)
        self.code = code


# Each module binds the part of schema.graphql its capability owns (it exports `bindables`).
BINDING_MODULES = (
    "proxyd.api.resolvers",
    "proxyd.api.logs_resolvers",
    "proxyd.api.tls_resolvers",
    "proxyd.api.oauth_resolvers",
    "proxyd.api.docker_resolvers",
    "proxyd.api.webui_resolvers",
)


def build_schema() -> GraphQLSchema:
    bindables = [b for name in BINDING_MODULES for b in importlib.import_module(name).bindables]
    return make_executable_schema(
        load_schema_from_path(str(SCHEMA_PATH)), *bindables, convert_names_case=True
    )


def _json(data: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def _error(message: str, code: str, status: int, headers: dict | None = None) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers)


def create_api_app(base: ApiContext) -> QuartTrio:
    """The app; `base` carries settings, store, manager and verifier (identity left empty)."""
    app = QuartTrio("proxyd")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    schema = build_schema()
    limits = base.limits = base.limits or Limits.from_settings(base.settings)
    rate = base.rate_limiter = base.rate_limiter or RateLimiter(limits.rate_per_minute)
    app.register_blueprint(oauth_blueprint(base))  # the OAuth 2.1 authorization server
    bound_redis_waits(app, base.store.redis)  # a hung Redis: 503, not a held client

    async def context_for(authorization: str | None) -> ApiContext:
        context = attrs.evolve(base, identity=None, auth_error=None)
        if not authorization:
            raise AuthFailed("authentication required: send Authorization: Bearer <token>.")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailed("the Authorization header must be 'Bearer <token>'.")
        try:
            context.identity = await base.verifier.verify(token.strip())
        except InvalidToken as exc:
            raise AuthFailed(str(exc)) from None
        if base.manager.auth.is_revoked(context.identity.claims.get("jti")):
            raise AuthFailed("the token was revoked.")
        return context

    @app.get("/health")
    async def health() -> Response:
        report = None
        with trio.move_on_after(HEALTH_TIMEOUT):
            report = await health_report(base)
        if report is None:  # Redis hangs: health_report bounds its ping, this bounds the rest
            report = {
                "status": "degraded",
                "instance": base.settings.instance,
                "redis": "unreachable",
                "proxies": len(base.manager.proxies),
            }
        return _json(report, 200 if report["status"] == "ok" else 503)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        """JSON with one sentence instead of Quart's HTML 500, on every route."""
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            code = exc.code or 500
            if code < 400:  # routing redirects keep their status and Location
                location = exc.get_response().headers.get("Location")
                return Response(b"", status=code, headers={"Location": location or "/"})
            return _error(f"{exc.name}.", exc.name.upper().replace(" ", "_"), code)
        if redis_unavailable(exc):
            log.warning("Redis unavailable on %s: %r", request.path, exc)
            if request.path.startswith("/graphql"):
                return _json(unavailable_response(), 503)
            return _json(
                {
                    "error": "temporarily_unavailable",
                    "error_description": REDIS_UNAVAILABLE_MESSAGE,
                },
                503,
            )
        log.exception("unexpected error on %s", request.path, exc_info=exc)
        if request.path.startswith("/graphql"):
            return _error("Internal server error.", "INTERNAL_SERVER_ERROR", 500)
        return _json({"error": "server_error", "error_description": "internal server error."}, 500)

    @app.get("/metrics")
    async def metrics() -> Response:
        # Only on API_PORT itself: through the public `localhost` proxy it is not found.
        if request.scope.get("proxyd.client_ip") is not None:
            return _error("not found.", "NOT_FOUND", 404)
        text = await render_metrics(
            base.request_log,
            redis=base.store.redis,
            instance=base.settings.instance,
            proxies=len(base.manager.proxies),
        )
        return Response(text, content_type=METRICS_CONTENT_TYPE)

    @app.get("/graphql")
    async def playground() -> Response:
        # GraphiQL, bundled from npm into the web UI's build (proxyd.api.webui): no CDN.
        return playground_response()

    @app.post("/graphql")
    async def graphql_http() -> Response:
        # Read the body first: answering a keep-alive request before its body has arrived can
        # leave hypercorn's connection stuck, so the next request on it never gets an answer.
        body = await request.get_data(as_text=True)
        authorization = request.headers.get("Authorization")
        context = None
        with trio.move_on_after(limits.timeout):
            try:
                context = await context_for(authorization)
            except AuthFailed as exc:
                return _error(
                    str(exc),
                    "UNAUTHENTICATED",
                    401,
                    {"WWW-Authenticate": 'Bearer realm="proxyd", error="invalid_token"'},
                )
        if context is None:
            return _error(REDIS_UNAVAILABLE_MESSAGE, SERVICE_UNAVAILABLE, 503)
        wait = rate.take(rate_key(context.identity))
        if wait:
            return _error(
                f"too many operations with this token (GRAPHQL_RATE_LIMIT is "
                f"{limits.rate_per_minute} a minute); retry in {retry_after(wait)} s.",
                "RATE_LIMITED",
                429,
                {"Retry-After": retry_after(wait)},
            )
        try:
            data = json.loads(body)
        except ValueError:
            return _error('the request body must be JSON: {"query": ...}.', "BAD_REQUEST", 400)
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            return _error("the JSON body needs a 'query' string.", "BAD_REQUEST", 400)
        variables = data.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return _error("'variables' must be a JSON object.", "BAD_REQUEST", 400)
        result = await execute(schema, data["query"], variables, data.get("operationName"), context)
        if "data" in result:
            return _json(result)
        code = ((result.get("errors") or [{}])[0].get("extensions") or {}).get("code")
        return _json(result, STATUS_OF_CODE.get(code, 400))

    @app.websocket("/graphql")
    async def graphql_ws() -> None:
        async def authenticate(payload: dict) -> ApiContext:
            payload = payload or {}
            authorization = (
                payload.get("Authorization")
                or payload.get("authorization")
                or (f"Bearer {payload['token']}" if payload.get("token") else None)
                or websocket.headers.get("Authorization")
            )
            return await context_for(authorization)

        await serve_graphql_ws(websocket, schema, authenticate)

    # MCP capability: /mcp and its protected resource metadata in front of the app; the SDK
    # session manager runs in the API server's nursery for as long as the server serves.
    mcp_endpoint = McpEndpoint(base)
    app.asgi_app = mcp_endpoint.wrap(app.asgi_app)  # type: ignore[method-assign]

    @app.before_serving
    async def start_mcp() -> None:
        await app.nursery.start(mcp_endpoint.run)

    app.register_blueprint(webui_blueprint(base))  # last: its catch-all serves the single-page app

    return app
