"""Access tokens: minting RS256 JWTs and verifying them locally with a small cache.

Claims: iss, sub, aud, client_id, scope (space-separated), iat, exp, jti. Scope `admin` includes
`user`. Verification needs no Redis round trip: keys are loaded once and refreshed when a token
names an unknown kid; verified tokens are cached until they expire.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Any

import attrs
import coredis
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from proxyd.oauth.keys import current_signing_key, verification_keys

MANAGEMENT_AUDIENCE = "proxyd-api"
SCOPES = ("admin", "user", "mcp")


class InvalidToken(Exception):
    """The token is malformed, badly signed, expired or not for us; the message says which."""


@attrs.frozen
class Identity:
    subject: str
    scopes: frozenset[str]
    client_id: str | None
    claims: dict[str, Any]

    def has(self, scope: str) -> bool:
        return scope in self.scopes or (scope == "user" and "admin" in self.scopes)


def parse_ttl(text: str) -> int:
    """'90s', '15m', '1h', '7d' or plain seconds -> seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            value = int(float(text[:-1]) * units[text[-1]])
        else:
            value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"TTL {text!r} must be a positive duration such as 3600, 15m, 1h or 7d.")
    return value


async def mint(
    redis: coredis.Redis,
    *,
    issuer: str,
    subject: str,
    scopes: list[str],
    audience: str | list[str] = MANAGEMENT_AUDIENCE,
    ttl: int = 3600,
    client_id: str = "proxyd-cli",
    extra: dict[str, Any] | None = None,
    private_key_b64: str = "",
    jti: str | None = None,
) -> str:
    key = await current_signing_key(redis, private_key_b64)
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl,
        "jti": jti or secrets.token_urlsafe(16),
        **(extra or {}),
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}, claims, key)


class TokenVerifier:
    """Verifies tokens against the stored keys; caches keys and results in memory."""

    def __init__(self, redis: coredis.Redis, issuer: str, cache_size: int = 10000) -> None:
        self.redis = redis
        self.issuer = issuer
        self._keys: KeySet | None = None
        self._cache: OrderedDict[str, Identity] = OrderedDict()
        self._cache_size = cache_size

    async def _keyset(self, kid: str | None) -> KeySet:
        if self._keys is None or (kid and not any(k.kid == kid for k in self._keys.keys)):
            self._keys = await verification_keys(self.redis)
        return self._keys

    async def verify(self, token: str, audience: str | None = MANAGEMENT_AUDIENCE) -> Identity:
        """The token's identity; audience None skips the audience check (the caller does it)."""
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None and cached.claims["exp"] > now and _aud_ok(cached.claims, audience):
            return cached
        try:
            header = jws.extract_compact(token.encode()).headers()
            keyset = await self._keyset(header.get("kid"))
            decoded = jwt.decode(token, keyset, algorithms=["RS256"])
        except (JoseError, ValueError, KeyError) as exc:
            raise InvalidToken(f"the token is not valid ({type(exc).__name__}).") from None
        claims = decoded.claims
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the token was issued by someone else.")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise InvalidToken("the token has expired.")
        if not _aud_ok(claims, audience):
            raise InvalidToken("the token is not meant for this API.")
        identity = Identity(
            subject=str(claims.get("sub", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            client_id=claims.get("client_id"),
            claims=claims,
        )
        self._cache[token] = identity
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return identity


def _aud_ok(claims: dict, audience: str | None) -> bool:
    if audience is None:
        return True
    aud = claims.get("aud")
    return aud == audience or (isinstance(aud, list) and audience in aud)
