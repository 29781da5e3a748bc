"""The web UI and the GraphQL playground as static files: the single-page app at `/` (with
history fallback, so deep links work) and GraphiQL at `GET /graphql` for browsers.

Both come from one Vite build of web/ (`npm run build`), written into proxyd/api/web_dist/ so
the wheel and sdist carry it (package data) and `pip install` users need no Node. Nothing is
loaded from another origin: every response of the UI carries a Content-Security-Policy with
`default-src 'self'`, plus the WebSocket origin of the request (for graphql-transport-ws), and
refuses framing. Hashed files under assets/ are cached for a year; index.html is never cached.
"""

from __future__ import annotations

import re
from pathlib import Path

from quart import Blueprint, Response, request

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


def webui_blueprint() -> Blueprint:
    bp = Blueprint("webui", __name__)

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
