"""Access tokens: minting RS256 JWTs and verifying them locally with a small cache.

Claims: iss, sub, aud, client_id, scope (space-separated), iat, exp, jti. Scope `admin` includes
`user`. Verification needs no Redis round trip: it uses public keys held in memory (see
TokenVerifier for how and when they are reloaded); verified tokens are cached until they expire.
Checks: RS256 only, a known kid, signature, exact iss, exp, nbf and iat (both with a clock skew
of OAUTH_CLOCK_SKEW seconds), audience.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Any

import attrs
import coredis
import trio
from coredis.exceptions import RedisError
from joserfc import jws, jwt
from joserfc.errors import JoseError

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
    """Verifies tokens locally against public keys held in memory; caches results by token.

    A kid not in memory costs nothing on the request path: the key set is reloaded from Redis
    only by `refresh()` (called at start and on every reconcile), or on a miss at most once per
    `refresh_interval` seconds (one reload at a time, bounded by a timeout; requests that find a
    reload running do not wait for it); a kid that was not found is not looked for again for
    `refresh_interval` seconds (negative cache, at most 1024 kids).
    """

    def __init__(
        self,
        redis: coredis.Redis,
        issuer: str,
        cache_size: int = 10000,
        *,
        leeway: float = 30.0,
        refresh_interval: float = 10.0,
        private_key_b64: str = "",
        retained_kids: tuple[str, ...] = (),
    ) -> None:
        self.redis = redis
        self.issuer = issuer
        self.leeway = leeway
        self.refresh_interval = refresh_interval
        self._private_key_b64 = private_key_b64
        self._retained = retained_kids
        self._keys: dict[str, Any] = {}
        self._last_refresh = -float("inf")
        self._refreshing = False
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._cache: OrderedDict[str, Identity] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_settings(cls, redis: coredis.Redis, settings: Any) -> TokenVerifier:
        return cls(
            redis,
            settings.issuer,
            leeway=settings.oauth_clock_skew,
            refresh_interval=settings.oauth_key_refresh_interval,
            private_key_b64=settings.oauth_jwt_private_key_b64,
            retained_kids=settings.oauth_jwt_retained_kids,
        )

    async def refresh(self, timeout: float = 2.0) -> bool:
        """Reload the public keys from Redis; False (keys unchanged) if Redis did not answer."""
        if self._refreshing:
            return False
        self._refreshing = True
        self._last_refresh = time.monotonic()
        try:
            with trio.move_on_after(timeout):
                keyset = await verification_keys(self.redis, self._private_key_b64, self._retained)
                self._keys = {key.kid: key for key in keyset.keys}
                return True
            return False
        except (OSError, RedisError):
            return False
        finally:
            self._refreshing = False

    async def _key(self, kid: Any) -> Any:
        if not isinstance(kid, str) or not 0 < len(kid) <= 128:
            return None
        key = self._keys.get(kid)
        if key is not None:
            return key
        now = time.monotonic()
        if self._unknown.get(kid, 0.0) > now:
            return None  # negative cache: looked for (and missed) less than an interval ago
        if now - self._last_refresh >= self.refresh_interval:
            await self.refresh()
            key = self._keys.get(kid)
            if key is not None:
                return key
        self._unknown[kid] = now + self.refresh_interval
        self._unknown.move_to_end(kid)
        if len(self._unknown) > 1024:
            self._unknown.popitem(last=False)
        return None

    def cached(self, token: str, audience: str | None = MANAGEMENT_AUDIENCE) -> Identity | None:
        """verify()'s answer for a token it verified before and that is still unexpired (and for
        audience), without awaiting anything; None: call verify()."""
        cached = self._cache.get(token)
        if (
            cached is not None
            and cached.claims["exp"] > time.time()
            and _aud_ok(cached.claims, audience)
        ):
            return cached
        return None

    async def verify(self, token: str, audience: str | None = MANAGEMENT_AUDIENCE) -> Identity:
        """The token's identity; audience None skips the audience check (the caller does it)."""
        cached = self.cached(token, audience)
        if cached is not None:
            return cached
        now = time.time()
        if len(token) > 8192:
            raise InvalidToken("the token is too long.")
        try:
            header = jws.extract_compact(token.encode()).headers()
            if header.get("alg") != "RS256":
                raise InvalidToken("the token is not signed with RS256.")
            key = await self._key(header.get("kid"))
            if key is None:
                raise InvalidToken("the token is signed with a key this server does not know.")
            decoded = jwt.decode(token, key, algorithms=["RS256"])
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(f"the token is not valid ({type(exc).__name__}).") from None
        claims = decoded.claims
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the token was issued by someone else.")
        if not _number(claims.get("exp")) or claims["exp"] <= now:
            raise InvalidToken("the token has expired.")
        if "nbf" in claims and (not _number(claims["nbf"]) or claims["nbf"] > now + self.leeway):
            raise InvalidToken("the token is not valid yet (nbf is in the future).")
        if "iat" in claims and (not _number(claims["iat"]) or claims["iat"] > now + self.leeway):
            raise InvalidToken("the token claims to be issued in the future (iat).")
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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _aud_ok(claims: dict, audience: str | None) -> bool:
    if audience is None:
        return True
    aud = claims.get("aud")
    return aud == audience or (isinstance(aud, list) and audience in aud)
