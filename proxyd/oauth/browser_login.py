"""Browser login for proxies in auth_mode `redirect`: a browser without a valid token is sent to
/authorize as the proxy's own public client (`proxyd-proxy:{hostname}`, PKCE S256), and comes
back to `{public origin}/.proxyd/callback` on the proxy's hostname, where the code is exchanged
in-process, the access token is set as an HttpOnly cookie (`auth_cookie_name`; `__Host-` and
Secure over https) and the browser returns to the page it first asked for (a local path only,
so this is no open redirect). These two steps touch Redis; ordinary requests do not.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from proxyd.oauth.outcome import Outcome
from proxyd.oauth.pkce import s256
from proxyd.oauth.store import new_secret

if TYPE_CHECKING:
    from proxyd.store.models import Proxy

ProxyAuth = Any  # proxyd.oauth.protect.ProxyAuth (which imports this module)

CALLBACK_PATH = "/.proxyd/callback"
CLIENT_PREFIX = "proxyd-proxy:"


def wants_html(scope: dict) -> bool:
    if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
        return False
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"text/html" in value
    return False


def cookie_name(proxy: Proxy, secure: bool) -> str:
    return ("__Host-" if secure else "") + proxy.auth_cookie_name


def token_from_cookie(scope: dict, proxy: Proxy) -> str | None:
    wanted = cookie_name(proxy, scope.get("scheme") == "https").encode()
    for name, value in scope["headers"]:
        if name == b"cookie":
            for part in value.split(b";"):
                key, _, val = part.strip().partition(b"=")
                if key == wanted and val:
                    return val.decode("latin-1")
    return None


def _redirect(location: str, cookie: str | None = None) -> Outcome:
    headers = [
        (b"location", location.encode("latin-1")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    if cookie:
        headers.append((b"set-cookie", cookie.encode("latin-1")))
    return Outcome(status=302, response_headers=tuple(headers))


def _text(status: int, message: str) -> Outcome:
    body = (message + "\n").encode()
    headers = (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    )
    return Outcome(status=status, response_headers=headers, body=body)


async def start(auth: ProxyAuth, scope: dict, proxy: Proxy, origin: str) -> Outcome:
    verifier = new_secret(48)
    state = new_secret(24)
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    await auth.store.put_state(
        f"edge:{state}",
        {
            "verifier": verifier,
            "return_to": target.decode("latin-1"),
            "host": proxy.hostname,
            "redirect_uri": origin + CALLBACK_PATH,
        },
        auth.settings.oauth_session_timeout,
    )
    from proxyd.oauth.scopes import supported_scopes

    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_PREFIX + proxy.hostname,
            "redirect_uri": origin + CALLBACK_PATH,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
            "state": state,
            "resource": origin,
            "scope": " ".join(supported_scopes(proxy)),
        }
    )
    return _redirect(f"{auth.settings.issuer}/authorize?{query}")


async def finish(auth: ProxyAuth, scope: dict, proxy: Proxy, origin: str) -> Outcome:
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    state = query.get("state", "")
    data = await auth.store.take_state(f"edge:{state}") if state else None
    if data is None or data["host"] != proxy.hostname:
        return _text(400, "400 Bad Request: this sign-in expired or was already used.")
    if query.get("error") or not query.get("code"):
        return _text(403, f"403 Forbidden: sign-in failed ({query.get('error', 'no code')}).")
    code = await auth.store.take_code(query["code"])
    if (
        code is None
        or code["client_id"] != CLIENT_PREFIX + proxy.hostname
        or code["redirect_uri"] != origin + CALLBACK_PATH
        or not hmac.compare_digest(s256(data["verifier"]), code["code_challenge"])
    ):
        return _text(400, "400 Bad Request: the sign-in code is not valid here.")
    body: dict[str, Any] = await auth.server.issue(
        user=code["user"],
        client_id=code["client_id"],
        scopes=code["scopes"],
        audiences=code["audiences"],
        resources=code["resources"],
        refresh=False,
    )
    secure = scope.get("scheme") == "https"
    cookie = (
        f"{cookie_name(proxy, secure)}={body['access_token']}; Path=/; HttpOnly; SameSite=Lax; "
        f"Max-Age={body['expires_in']}" + ("; Secure" if secure else "")
    )
    back = data["return_to"]
    if not back.startswith("/") or back.startswith("//"):
        back = "/"
    return _redirect(back, cookie)


def proxy_client(hostname: str, proxy: Proxy | None) -> dict[str, Any] | None:
    """The built-in public client a redirect-mode proxy signs browsers in with. Its only redirect
    URI is the proxy's own callback (clients.redirect_ok), its only resource the proxy itself
    (never the management API), its codes are redeemed only in-process by finish(), never at
    /token, and /authorize accepts it only with the state of a sign-in the proxy started."""
    if proxy is None or not proxy.auth_enabled or proxy.auth_mode != "redirect":
        return None
    if proxy.hostname == "localhost" or proxy.hostname != hostname:
        return None
    return {
        "client_id": CLIENT_PREFIX + hostname,
        "client_name": f"{hostname} (proxyd browser login)",
        "redirect_uris": [],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
    }
