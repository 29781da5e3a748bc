"""The management app (quart-trio): GraphQL over HTTP (POST /graphql), the GraphiQL playground
(GET /graphql), GraphQL subscriptions over graphql-transport-ws (websocket /graphql), and /health.

Every GraphQL request needs a bearer token proxyd signed: a missing or invalid one gets HTTP 401
with a GraphQL error coded UNAUTHENTICATED, before anything is executed.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

import attrs
from ariadne import load_schema_from_path, make_executable_schema
from graphql import GraphQLSchema
from quart import Response, request, websocket
from quart_trio import QuartTrio

from proxyd.api.context import ApiContext
from proxyd.api.execution import execute
from proxyd.api.graphql_ws import serve_graphql_ws
from proxyd.api.resolvers import health_report
from proxyd.api.webui import playground_response, webui_blueprint
from proxyd.logs.metrics import METRICS_CONTENT_TYPE, render_metrics
from proxyd.oauth.blueprint import oauth_blueprint
from proxyd.oauth.tokens import InvalidToken

log = logging.getLogger("proxyd.api")

SCHEMA_PATH = Path(__file__).with_name("schema.graphql")


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
    app.register_blueprint(oauth_blueprint(base))  # the OAuth 2.1 authorization server

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
        report = await health_report(base)
        return _json(report, 200 if report["status"] == "ok" else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        # Only on API_PORT itself: through the public `localhost` proxy it is not found.
        if request.scope.get("proxyd.client_ip") is not None:
            return _error("not found.", "NOT_FOUND", 404)
        return Response(await render_metrics(base), content_type=METRICS_CONTENT_TYPE)

    @app.get("/graphql")
    async def playground() -> Response:
        # GraphiQL, bundled from npm into the web UI's build (proxyd.api.webui): no CDN.
        return playground_response()

    @app.post("/graphql")
    async def graphql_http() -> Response:
        try:
            context = await context_for(request.headers.get("Authorization"))
        except AuthFailed as exc:
            return _error(
                str(exc),
                "UNAUTHENTICATED",
                401,
                {"WWW-Authenticate": 'Bearer realm="proxyd", error="invalid_token"'},
            )
        body = await request.get_data(as_text=True)
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
        return _json(result, 200 if "data" in result else 400)

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

    app.register_blueprint(webui_blueprint(base))  # last: its catch-all serves the single-page app

    return app
