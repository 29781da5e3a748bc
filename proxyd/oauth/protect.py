"""Protection at the proxy: ProxyAuth.check(scope, proxy) decides, for one request to an
auth-enabled proxy, whether it goes on (with the identity headers for the backend) or is answered
here (401 with WWW-Authenticate, 403 insufficient_scope, or the protected resource metadata).

Nothing here touches Redis per request: tokens are verified locally (RS256 against keys loaded
once, results cached by token until they expire), and revoked jtis are held in memory, loaded
from `oauth:revoked` at start and on every reconcile, and updated at once by `token_revoked`
events (every process applies every event).

Checks, in order: excluded paths pass; /.well-known/oauth-protected-resource[/suffix] is answered
(RFC 9728; resource = the exact public URL: request scheme, Host as sent, plus the suffix);
/.well-known/oauth-authorization-server[/suffix] passes without a token (the default route sends
it to the API), so MCP clients can discover from the resource's origin; Bearer token from the
Authorization header only (exactly one such header, else 400 invalid_request; a token in the
query string is refused; in mode redirect also the login cookie); then signature, exp, nbf, iat,
iss, audience (a URL naming this proxy's host, or one of auth_allowed_audiences), revocation,
allowlists (users, emails, organizations) and scopes (one of auth_allowed_scopes). Mode passthrough
lets requests without a valid token through without identity.

What goes upstream (every outcome that lets the request on, excluded paths included): proxyd's
cookies are removed (the login cookie `auth_cookie_name`, with or without `__Host-`, and every
`proxyd_*` cookie of the authorization server), and the Authorization header is removed unless
the proxy sets `resource_override_backend` (the backend serves its own resource metadata and
checks tokens itself; then the token is sent on, as `Authorization: Bearer`, also when it came
from the login cookie) or the path is excluded from auth (proxyd did not use the header there,
so it is the client's business with the backend).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from proxyd.config import Settings
from proxyd.oauth import browser_login
from proxyd.oauth import scopes as scope_rules
from proxyd.oauth.github import GitHub
from proxyd.oauth.outcome import Outcome
from proxyd.oauth.server import AuthServer
from proxyd.oauth.store import OAuthStore
from proxyd.oauth.tokens import Identity, InvalidToken, TokenVerifier
from proxyd.store.models import Proxy
from proxyd.store.repository import Store

PRM_PATH = "/.well-known/oauth-protected-resource"
AS_METADATA_PATH = "/.well-known/oauth-authorization-server"
_PRM_UNDER = PRM_PATH + "/"
_AS_METADATA_UNDER = AS_METADATA_PATH + "/"
OWN_COOKIE_PREFIXES = (b"proxyd_", b"__Host-proxyd_")  # the authorization server's cookies
FACTS_CACHE_SIZE = 10000  # tokens whose claims are kept worked out (like the verifier's cache)


def _without_own_cookies(value: bytes, own: set[bytes]) -> bytes:
    """A Cookie header value without proxyd's cookies (byte-exact for the others)."""
    kept = []
    for part in value.split(b";"):
        name = part.strip().partition(b"=")[0].strip()
        if not name or name in own or name.startswith(OWN_COOKIE_PREFIXES):
            continue
        kept.append(part.strip())
    return b"; ".join(kept)


def _json(status: int, data: Any, extra: list[tuple[bytes, bytes]] | None = None) -> Outcome:
    body = json.dumps(data).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    return Outcome(status=status, response_headers=tuple(headers), body=body)


class ProxyAuth:
    def __init__(
        self, settings: Settings, store: Store, proxy_of: Callable[[str], Proxy | None]
    ) -> None:
        self.settings = settings
        self.store = OAuthStore(store.redis)
        self.verifier = TokenVerifier.from_settings(store.redis, settings)
        self.revoked: dict[str, float] = {}
        self._facts_cache: dict[str, _Facts] = {}
        # For browser logins (auth_mode redirect): the same operations the token endpoint uses.
        self.server = AuthServer(
            settings=settings,
            store=self.store,
            events=store,
            verifier=self.verifier,
            proxy_of=proxy_of,
            github=GitHub(settings.github_base_url, settings.github_api_url),
        )

    # -- revocation list ----------------------------------------------------------------------
    async def reload(self) -> None:
        """At start and on every reconcile: the revocation list and the signing keys."""
        self.revoked = await self.store.revoked()
        await self.verifier.refresh()

    def apply_event(self, data: dict[str, Any]) -> None:
        now = time.time()
        for jti, exp in (data.get("jtis") or {}).items():
            self.revoked[str(jti)] = float(exp)
        if len(self.revoked) > 1000:
            self.revoked = {k: v for k, v in self.revoked.items() if v > now}

    def is_revoked(self, jti: Any) -> bool:
        return str(jti) in self.revoked

    # -- the per-request check --------------------------------------------------------------------
    @staticmethod
    def _origin(scope: dict, proxy: Proxy) -> str:
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        host = proxy.hostname
        for name, value in scope["headers"]:
            if name == b"host":
                sent = value.decode("latin-1").strip().lower()
                if sent.rsplit(":", 1)[0].strip("[]") == proxy.hostname.strip("[]"):
                    host = sent
                break
        return f"{scheme}://{host}"

    def metadata(self, scope: dict, proxy: Proxy, suffix: str) -> dict[str, Any]:
        resource = self._origin(scope, proxy) + suffix
        doc: dict[str, Any] = {
            "resource": resource,
            "authorization_servers": [self.settings.issuer],
            "jwks_uri": self.settings.issuer + "/jwks",
            "scopes_supported": scope_rules.supported_scopes(proxy),
            "bearer_methods_supported": proxy.resource_bearer_methods or ["header"],
            "resource_name": proxy.hostname,
        }
        if proxy.resource_documentation_suffix:
            doc["resource_documentation"] = (
                self._origin(scope, proxy) + proxy.resource_documentation_suffix
            )
        if proxy.resource_versions:
            doc["mcp_protocol_versions"] = proxy.resource_versions
        if proxy.resource_custom_metadata:
            doc.update(proxy.resource_custom_metadata)
        return doc

    def _challenge(
        self, scope: dict, proxy: Proxy, status: int, error: str | None, description: str
    ) -> Outcome:
        suffix = proxy.resource_endpoint or ""
        if suffix and not suffix.startswith("/"):
            suffix = "/" + suffix
        prm = self._origin(scope, proxy) + PRM_PATH + suffix.rstrip("/")
        needed = scope_rules.required_scopes(proxy) or scope_rules.supported_scopes(proxy)
        parts = [f'resource_metadata="{prm}"', f'scope="{" ".join(needed)}"']
        if error:
            parts.append(f'error="{error}"')
            parts.append(f'error_description="{description}"')
        header = ("Bearer " + ", ".join(parts)).encode("latin-1", "replace")
        body = {"error": error or "unauthorized", "error_description": description}
        return _json(status, body, [(b"www-authenticate", header)])

    async def check(self, scope: dict, proxy: Proxy) -> Outcome:
        path = scope["path"]
        for prefix in proxy.auth_excluded_paths or ():
            if _under(path, prefix):  # public by configuration: a client's own Authorization
                return Outcome(request_headers=self._upstream_headers(scope, proxy, True))
        if path == PRM_PATH or path.startswith(_PRM_UNDER):
            if not proxy.resource_override_backend:
                return _json(200, self.metadata(scope, proxy, path[len(PRM_PATH) :]))
            return Outcome(request_headers=self._upstream_headers(scope, proxy))
        if path == AS_METADATA_PATH or path.startswith(_AS_METADATA_UNDER):
            # Discovery from the resource's origin: the default route sends it to the API.
            return Outcome(request_headers=self._upstream_headers(scope, proxy))
        redirect_mode = proxy.auth_mode == "redirect"
        if redirect_mode and path == browser_login.CALLBACK_PATH:
            return await browser_login.finish(self, scope, proxy, self._origin(scope, proxy))
        token, bad_place, seen = None, False, 0
        for name, value in scope["headers"]:
            if name == b"authorization":
                seen += 1
                kind, _, rest = value.decode("latin-1").partition(" ")
                if kind.lower() == "bearer" and rest.strip():
                    token = rest.strip()
        if seen > 1:  # which token counts would be ambiguous (here and at the backend)
            return self._challenge(
                scope, proxy, 400, "invalid_request", "send exactly one Authorization header"
            )
        from_cookie = False
        if token is None and redirect_mode:
            token = browser_login.token_from_cookie(scope, proxy)
            from_cookie = token is not None
        if token is None and b"access_token=" in scope.get("query_string", b""):
            bad_place = True
        passthrough = proxy.auth_mode == "passthrough"
        login = redirect_mode and browser_login.wants_html(scope)
        if token is None:
            if login:
                return await browser_login.start(self, scope, proxy, self._origin(scope, proxy))
            if passthrough:
                return Outcome(request_headers=self._upstream_headers(scope, proxy))
            if bad_place:
                return self._challenge(
                    scope,
                    proxy,
                    401,
                    "invalid_request",
                    "send the token in the Authorization header",
                )
            return self._challenge(scope, proxy, 401, None, "authentication required")
        try:
            identity = self.verifier.cached(token, audience=None)  # the usual case: no await
            if identity is None:
                identity = await self.verifier.verify(token, audience=None)
        except InvalidToken as exc:
            if passthrough:
                return Outcome(request_headers=self._upstream_headers(scope, proxy))
            if login:
                return await browser_login.start(self, scope, proxy, self._origin(scope, proxy))
            return self._challenge(scope, proxy, 401, "invalid_token", str(exc))
        claims = identity.claims
        problem = None
        if self.is_revoked(claims.get("jti")):
            problem = "the token was revoked"
        elif not self._audience_ok(claims.get("aud"), proxy):
            problem = "the token is for another resource"
        else:
            facts = self._facts(token, identity)
            denied = scope_rules.denial(self.settings, proxy, facts.user)
            if denied:
                return self._challenge(scope, proxy, 403, "access_denied", denied.rstrip("."))
        if problem:
            if passthrough:
                return Outcome(request_headers=self._upstream_headers(scope, proxy))
            return self._challenge(scope, proxy, 401, "invalid_token", problem)
        required = scope_rules.required_scopes(proxy)
        if required and not any(identity.has(s) for s in required):
            return self._challenge(
                scope, proxy, 403, "insufficient_scope", "the token lacks a needed scope"
            )
        headers = {}
        if proxy.auth_pass_headers:
            prefix = proxy.auth_header_prefix
            headers = {
                f"{prefix}User": identity.subject,
                f"{prefix}Email": facts.email,
                f"{prefix}Scopes": facts.scopes,
                f"{prefix}Client-Id": facts.client_id,
            }
        upstream = self._upstream_headers(scope, proxy)
        if from_cookie and proxy.resource_override_backend:
            upstream.append((b"authorization", b"Bearer " + token.encode("latin-1")))
        return Outcome(headers=headers, request_headers=upstream, identity=identity)

    @staticmethod
    def _upstream_headers(
        scope: dict, proxy: Proxy, keep_authorization: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """The request's headers without proxyd's cookies, and without Authorization unless the
        proxy sends the token on (resource_override_backend: the backend checks it itself)."""
        own = None
        keep_token = keep_authorization or proxy.resource_override_backend
        headers = []
        for name, value in scope["headers"]:
            if name == b"authorization" and not keep_token:
                continue
            if name == b"cookie":
                if own is None:
                    cookie = proxy.auth_cookie_name.encode()
                    own = {cookie, b"__Host-" + cookie}
                value = _without_own_cookies(value, own)
                if not value:
                    continue
            headers.append((name, value))
        return headers

    @staticmethod
    def _audience_ok(aud: Any, proxy: Proxy) -> bool:
        values = aud if isinstance(aud, list) else [aud]
        allowed = proxy.auth_allowed_audiences or ()
        for value in values:
            if not isinstance(value, str):
                continue
            if value in allowed:
                return True
            host = _url_host(value)
            if host and host.lower() == proxy.hostname:
                return True
        return False

    def _facts(self, token: str, identity: Identity) -> _Facts:
        """What the per-request checks read from a verified token's claims, worked out once per
        token (the verifier hands out the same Identity while it caches the token)."""
        facts = self._facts_cache.get(token)
        if facts is None or facts.identity is not identity:
            facts = _Facts(identity)
            if len(self._facts_cache) >= FACTS_CACHE_SIZE:
                self._facts_cache.clear()
            self._facts_cache[token] = facts
        return facts


class _Facts:
    """A verified token's claims as the protection uses them (the claims never change)."""

    __slots__ = ("client_id", "email", "identity", "scopes", "user")

    def __init__(self, identity: Identity) -> None:
        claims = identity.claims
        email = claims.get("email")
        self.identity = identity
        self.user = {
            "login": identity.subject,
            "emails": claims.get("emails") or ([email] if email else []),
            "orgs": claims.get("orgs") or [],
        }
        self.email = str(email or "")
        self.scopes = " ".join(sorted(identity.scopes))
        self.client_id = str(identity.client_id or "")


@lru_cache(maxsize=1024)
def _url_host(url: str) -> str | None:
    """urlsplit(url).hostname, cached: the same few audiences come with every request."""
    return urlsplit(url).hostname


def _under(path: str, prefix: str) -> bool:
    """Excluded paths match like route prefixes: `/public` is `/public` and `/public/...`, never
    `/publicity`; `/public/` is `/public/...` only. The path is the edge's normalised one."""
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")
