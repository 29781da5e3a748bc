"""The web UI and the GraphQL playground as static files: the single-page app at `/` (with
history fallback, so deep links work) and GraphiQL at `GET /graphql` for browsers.

Both come from one Vite build of web/ (`npm run build`), written into proxyd/api/web_dist/ so
the wheel and sdist carry it (package data) and `pip install` users need no Node. Nothing is
loaded from another origin: every response of the UI carries a Content-Security-Policy with
`default-src 'self'`, plus the WebSocket origin of the request (for graphql-transport-ws), and
refuses framing. Hashed files under assets/ are cached for a year; index.html is never cached.

"Sign in with GitHub" runs proxyd's own authorization server with a built-in public client,
`proxyd-web`, whose only redirect URI is exactly `<OAUTH_ISSUER>/signin/callback` (the app's
callback page). GET /signin/github (re)registers that client (idempotent, so a deleted one comes
back) and sends the browser to /authorize with the PKCE challenge and state the app made; the app
exchanges the code at /token itself and keeps the tokens in sessionStorage.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import coredis
from quart import Blueprint, Response, redirect, request

from proxyd.api.context import ApiContext
from proxyd.oauth.store import OAuthStore

log = logging.getLogger("proxyd.api")

DIST = Path(__file__).with_name("web_dist")
ASSETS = "assets"
INDEX = "index.html"
PLAYGROUND = "graphiql.html"
IMMUTABLE = "public, max-age=31536000, immutable"
NOT_BUILT = (
    "The web UI is not built: run `nox -s serve`, or `npm ci && npm run build` in web/, "
    "then reload.\n"
)
# host[:port] as a browser sends it; anything else gets no extra WebSocket source.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}


def content_security_policy(host: str | None) -> str:
    """`default-src 'self'`, plus ws:/wss: for exactly this host (older browsers do not count
    WebSocket URLs as 'self')."""
    connect = "'self'"
    if host and _HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return (
        f"default-src 'self'; connect-src {connect}; img-src 'self' data:; font-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def security_headers(cache_control: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("Host")),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache_control,
    }


def _file(relative: str, cache_control: str, status: int = 200) -> Response:
    path = DIST / relative
    body = path.read_bytes()
    content_type = _TYPES.get(path.suffix, "application/octet-stream")
    return Response(
        body, status=status, headers=security_headers(cache_control), content_type=content_type
    )


def _not_built() -> Response:
    return Response(
        NOT_BUILT,
        status=503,
        content_type="text/plain; charset=utf-8",
        headers=security_headers("no-store"),
    )


def _not_found() -> Response:
    return Response(
        "Not found.\n",
        status=404,
        content_type="text/plain; charset=utf-8",
        headers=security_headers("no-store"),
    )


def _inside_dist(relative: str) -> Path | None:
    """The built file `relative` names, or None; never anything outside DIST."""
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    path = DIST.joinpath(*parts)
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_file() or not resolved.is_relative_to(DIST.resolve()):
        return None
    return path


def wants_html() -> bool:
    """A browser navigation: its Accept header prefers text/html to JSON."""
    accept = request.accept_mimetypes
    return accept.quality("text/html") > accept.quality("application/json")


UI_CLIENT_ID = "proxyd-web"
UI_CALLBACK_PATH = "/signin/callback"
_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_STATE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def ui_client(issuer: str) -> dict[str, Any]:
    """The web UI's OAuth client: public (PKCE, no secret), one exact redirect URI."""
    return {
        "client_id": UI_CLIENT_ID,
        "client_name": "proxyd web UI",
        "redirect_uris": [issuer + UI_CALLBACK_PATH],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "admin user",
        "builtin": True,
    }


def _text(message: str, status: int) -> Response:
    return Response(
        message + "\n",
        status=status,
        content_type="text/plain; charset=utf-8",
        headers=security_headers("no-store"),
    )


async def start_github_signin(base: ApiContext) -> Response:
    issuer = base.settings.issuer
    here = (request.headers.get("Host") or "").lower()
    if urlsplit(issuer).netloc.lower() != here:
        return _text(
            f"Sign in with GitHub works on {issuer}/ (proxyd's OAuth issuer): open the web UI "
            "there, or paste a management token here.",
            409,
        )
    challenge = request.args.get("code_challenge", "")
    state = request.args.get("state", "")
    if not _PKCE_CHALLENGE.match(challenge) or not _STATE.match(state):
        return _text("code_challenge (S256, 43 characters) and state are required.", 400)
    try:
        await OAuthStore(base.store.redis).put_client(ui_client(issuer), None)
    except (OSError, coredis.exceptions.RedisError) as exc:
        log.warning("cannot register the web UI's OAuth client: %s", exc)
        return _text("proxyd cannot reach Redis right now; try again in a moment.", 503)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": UI_CLIENT_ID,
            "redirect_uri": issuer + UI_CALLBACK_PATH,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "scope": "admin user",
            "resource": issuer + "/",
        }
    )
    response = redirect(f"{issuer}/authorize?{query}", 302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def playground_response() -> Response:
    """GraphiQL for a browser; a JSON client that GETs /graphql is told to POST."""
    if not wants_html():
        body = (
            '{"errors": [{"message": "send GraphQL queries with POST (JSON body), or open '
            'this URL in a browser for the playground.", "extensions": {"code": "BAD_REQUEST"}}]}'
        )
        return Response(
            body, status=405, content_type="application/json", headers={"Allow": "GET, POST"}
        )
    if not (DIST / PLAYGROUND).is_file():
        return _not_built()
    return _file(PLAYGROUND, "no-cache")


def webui_blueprint(base: ApiContext) -> Blueprint:
    bp = Blueprint("webui", __name__)

    @bp.get("/signin/github")
    async def signin_github() -> Response:
        return await start_github_signin(base)

    @bp.get("/")
    async def index() -> Response:
        if not (DIST / INDEX).is_file():
            return _not_built()
        return _file(INDEX, "no-cache")

    @bp.get("/<path:relative>")
    async def static_or_app(relative: str) -> Response:
        found = _inside_dist(relative)
        if found is not None and relative not in (INDEX, PLAYGROUND):
            immutable = relative.startswith(ASSETS + "/")
            return _file(relative, IMMUTABLE if immutable else "no-cache")
        if relative.startswith(ASSETS + "/") or not wants_html():
            return _not_found()  # a missing file or an API client's typo, not a page of the app
        if not (DIST / INDEX).is_file():
            return _not_built()
        return _file(INDEX, "no-cache")  # history fallback: the app routes deep links itself

    return bp
