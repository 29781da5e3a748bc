"""ApiContext: what every GraphQL resolver gets (settings, store, proxy manager, caller identity)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from proxyd.api.execution import api_error
from proxyd.config import Settings
from proxyd.oauth.tokens import Identity, TokenVerifier
from proxyd.store.repository import Store

if TYPE_CHECKING:
    from proxyd.edge.manager import ProxyManager


@attrs.define
class ApiContext:
    settings: Settings
    store: Store
    manager: ProxyManager
    verifier: TokenVerifier
    certs: Any = None  # proxyd.tls certificate manager (TLS capability)
    request_log: Any = None  # proxyd.logs request log (logging capability)
    docker: Any = None  # proxyd.docker DockerRuntime (Docker services and ports)
    identity: Identity | None = None
    auth_error: str | None = None
    limits: Any = None  # proxyd.api.limits.Limits: set by the API app for every operation
    rate_limiter: Any = None  # proxyd.api.limits.RateLimiter shared by HTTP and websocket

    def require(self, scope: str) -> Identity:
        if self.identity is None:
            raise api_error(
                self.auth_error or "authentication required: send Authorization: Bearer <token>.",
                "UNAUTHENTICATED",
            )
        if not self.identity.has(scope):
            raise api_error(f"this needs a token with scope {scope!r}.", "FORBIDDEN")
        return self.identity

    @property
    def actor(self) -> str | None:
        return self.identity.subject if self.identity else None
