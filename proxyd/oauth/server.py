"""AuthServer: what every authorization-server endpoint shares (settings, OAuth store, GitHub,
the proxy snapshot) and the operations several of them need: resolving an RFC 8707 resource,
choosing the GitHub app, issuing access + refresh tokens and revoking them everywhere.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import attrs

from proxyd.config import Settings
from proxyd.oauth.github import GitHub, GitHubApp
from proxyd.oauth.scopes import Target
from proxyd.oauth.store import TOKEN_REVOKED, OAuthStore, new_secret
from proxyd.oauth.tokens import MANAGEMENT_AUDIENCE, TokenVerifier, mint
from proxyd.store.models import Proxy
from proxyd.store.repository import Store

MAX_RESOURCES = 10


class OAuthFailure(Exception):
    """An OAuth error: code (RFC 6749 error), description, HTTP status and extra headers."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


@attrs.define
class AuthServer:
    settings: Settings
    store: OAuthStore
    events: Store
    verifier: TokenVerifier
    proxy_of: Callable[[str], Proxy | None]
    github: GitHub

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    # -- resources (RFC 8707) -------------------------------------------------------------------
    def resource(self, value: str) -> Target:
        """The proxy a resource URL names and the audiences a token for it carries."""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
            raise OAuthFailure("invalid_target", f"resource {value!r} is not an absolute URL.")
        if "@" in parts.netloc or "\\" in value:
            raise OAuthFailure("invalid_target", f"resource {value!r} is not a plain URL.")
        host = parts.hostname.lower()
        api_port = self.settings.api_port
        if host in ("127.0.0.1", "localhost", "::1") and parts.port == api_port:
            return Target(value, self.proxy_of("localhost"), (value, MANAGEMENT_AUDIENCE))
        if self._is_issuer_origin(parts):
            # The management app on the issuer's own host (/mcp, /graphql): management policy.
            return Target(value, self.proxy_of("localhost"), (value, MANAGEMENT_AUDIENCE))
        proxy = self.proxy_of(host)
        if proxy is None or not (proxy.auth_enabled or proxy.hostname == "localhost"):
            raise OAuthFailure("invalid_target", f"resource {value!r} is not protected by proxyd.")
        if proxy.hostname == "localhost":
            return Target(value, proxy, (value, MANAGEMENT_AUDIENCE))
        return Target(value, proxy, (value,))

    def _is_issuer_origin(self, parts) -> bool:
        issuer = urlsplit(self.settings.issuer)
        default = {"http": 80, "https": 443}
        return (
            parts.scheme == issuer.scheme
            and (parts.hostname or "").lower() == (issuer.hostname or "").lower()
            and (parts.port or default[parts.scheme])
            == (issuer.port or default.get(issuer.scheme, 0))
            and _serves_management(self.proxy_of((issuer.hostname or "").lower()))
        )

    def targets(self, values: list[str]) -> list[Target]:
        if len(values) > MAX_RESOURCES:
            raise OAuthFailure("invalid_target", f"at most {MAX_RESOURCES} resources per request.")
        return [self.resource(v) for v in values]

    @staticmethod
    def audiences(targets: list[Target]) -> list[str]:
        out: list[str] = []
        for target in targets:
            out += [a for a in target.audiences if a not in out]
        return out

    @staticmethod
    def main_proxy(targets: list[Target]) -> Proxy | None:
        """The proxy whose GitHub app signs the user in: the first resource's."""
        return targets[0].proxy if targets else None

    async def github_app(self, proxy: Proxy | None) -> GitHubApp | None:
        if proxy is not None:
            own = await self.store.github_app(proxy.hostname)
            if own:
                return GitHubApp(own["client_id"], own["client_secret"])
        if self.settings.github_client_id and self.settings.github_client_secret:
            return GitHubApp(self.settings.github_client_id, self.settings.github_client_secret)
        return None

    # -- issuing and revoking --------------------------------------------------------------------
    async def issue(
        self,
        *,
        user: dict[str, Any],
        client_id: str,
        scopes: list[str],
        audiences: list[str],
        resources: list[str],
        family: str | None = None,
        refresh: bool = True,
    ) -> dict[str, Any]:
        """Mint an access token (and a rotated refresh token); the token response body."""
        settings = self.settings
        family = family or new_secret(12)
        jti = secrets.token_urlsafe(16)
        ttl = settings.oauth_access_token_lifetime
        audience: str | list[str] = audiences or [self.issuer]
        if isinstance(audience, list) and len(audience) == 1:
            audience = audience[0]
        token = await mint(
            self.store.redis,
            issuer=self.issuer,
            subject=user["login"],
            scopes=scopes,
            audience=audience,
            ttl=ttl,
            client_id=client_id,
            extra={
                "email": user.get("email"),
                "emails": user.get("emails") or [],
                "orgs": user.get("orgs") or [],
            },
            private_key_b64=settings.oauth_jwt_private_key_b64,
            jti=jti,
        )
        now = int(time.time())
        await self.store.record_token(
            {
                "jti": jti,
                "sub": user["login"],
                "client_id": client_id,
                "scope": " ".join(scopes),
                "aud": audiences,
                "iat": now,
                "exp": now + ttl,
                "family": family,
            }
        )
        await self.store.count("tokens_issued")
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(scopes),
        }
        if refresh:
            refresh_token = new_secret(32)
            await self.store.put_refresh(
                refresh_token,
                {
                    "family": family,
                    "client_id": client_id,
                    "user": user,
                    "scopes": scopes,
                    "resources": resources,
                    "audiences": audiences,
                },
                settings.oauth_refresh_token_lifetime,
            )
            body["refresh_token"] = refresh_token
        return body

    async def revoke(self, entries: dict[str, int]) -> None:
        """Revoke access tokens by jti everywhere: Redis list + event for every process."""
        if not entries:
            return
        await self.store.revoke_jtis(entries)
        await self.events.publish_event(TOKEN_REVOKED, None, jtis=entries)
        await self.store.count("tokens_revoked")

    async def revoke_family(self, family: str) -> None:
        await self.revoke(await self.store.revoke_family(family))


def _serves_management(proxy: Proxy | None) -> bool:
    """The proxy's target is the management app itself (not a backend of its own)."""
    return proxy is not None and proxy.target_url.startswith("internal://")
