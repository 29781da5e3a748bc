"""Rate limits of the authorization server, counted in Redis so every proxyd process sharing it
sees the same numbers: fixed one-minute windows, keys `oauth:rl:{kind}:{sha256 of who}:{window}`
that expire with their window. Over the limit the endpoint answers 429 with one sentence and a
Retry-After header (seconds until the window ends).

- /register: OAUTH_REGISTER_RATE_LIMIT registrations per client address per minute.
- /token: OAUTH_TOKEN_FAILURE_LIMIT failed attempts (wrong secret, bad code, verifier or refresh
  token) per client_id per minute; successful requests and device-flow polling do not count.
"""

from __future__ import annotations

import time

import coredis

from proxyd.oauth.server import OAuthFailure
from proxyd.oauth.store import digest

WINDOW = 60


def _key(kind: str, who: str) -> tuple[str, int]:
    now = time.time()
    window = int(now // WINDOW)
    retry = max(1, int((window + 1) * WINDOW - now))
    return f"oauth:rl:{kind}:{digest(who)[:32]}:{window}", retry


def too_many(message: str, retry_after: int) -> OAuthFailure:
    return OAuthFailure(
        "temporarily_unavailable",
        f"{message}; try again in {retry_after} seconds.",
        429,
        {"Retry-After": str(retry_after)},
    )


async def count(redis: coredis.Redis, kind: str, who: str, limit: int, message: str) -> None:
    """Count one event; raise 429 when it goes over limit in this window."""
    key, retry = _key(kind, who)
    async with redis.pipeline(transaction=True) as pipe:  # one round trip; never a key without TTL
        counted = pipe.incr(key)
        pipe.expire(key, WINDOW + 1)
    used = await counted
    if used > limit:
        raise too_many(message, retry)


async def check(redis: coredis.Redis, kind: str, who: str, limit: int, message: str) -> None:
    """Raise 429 when this window already holds limit events (without counting one)."""
    key, retry = _key(kind, who)
    used = int(await redis.get(key) or 0)
    if used >= limit:
        raise too_many(message, retry)
