"""HTTP helpers shared by the authorization server's endpoints: OAuth error and JSON responses
(Cache-Control: no-store), HTML pages that cannot be framed, cookies and request parameters.

Cookies: when the issuer is https they are `__Host-` prefixed, Secure, HttpOnly, SameSite=Lax and
Path=/. Over plain http (loopback and local development, where browsers would drop a Secure
cookie) the same cookie is set without the prefix and without Secure, still HttpOnly and Lax.
"""

from __future__ import annotations

import html
import json
from typing import Any

from quart import Response, request

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    **NO_STORE,
}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data),
        status=status,
        headers={**NO_STORE, **(headers or {})},
        content_type="application/json",
    )


def oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> Response:
    """RFC 6749 section 5.2 error JSON."""
    return json_response({"error": error, "error_description": description}, status, headers)


def page(title: str, body: str, status: int = 200) -> Response:
    """An HTML page (body is trusted markup; escape inputs with esc) that no one can frame."""
    text = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width'><title>{esc(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;"
        "padding:0 1em;line-height:1.5}button{font-size:1em;padding:.4em 1.2em;margin-right:.5em}"
        "code{background:#eee;padding:0 .2em}</style></head>"
        f"<body><h1>{esc(title)}</h1>{body}</body></html>"
    )
    return Response(
        text, status=status, headers=PAGE_HEADERS, content_type="text/html; charset=utf-8"
    )


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def cookie_name(base: str, secure: bool) -> str:
    return f"__Host-{base}" if secure else base


def set_cookie(response: Response, base: str, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        cookie_name(base, secure),
        value,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def read_cookie(base: str, secure: bool) -> str | None:
    return request.cookies.get(cookie_name(base, secure))


async def params() -> dict[str, str]:
    """Form parameters (POST) or query parameters (GET); a repeated parameter is an error
    reported by the caller through `repeated()`."""
    if request.method == "POST":
        form = await request.form
        return {k: form.get(k, "") for k in form}
    return {k: request.args.get(k, "") for k in request.args}


async def repeated() -> str | None:
    """The first parameter given more than once (RFC 6749 3.1: MUST NOT be repeated)."""
    source = (await request.form) if request.method == "POST" else request.args
    for key in source:
        if len(source.getlist(key)) > 1 and key != "resource":
            return key
    return None
