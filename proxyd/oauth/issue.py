"""`proxyd token issue`: mint a management token straight from the signing key in Redis."""

from __future__ import annotations

from urllib.parse import urlsplit

import trio
from coredis.exceptions import ConnectionError as RedisConnectionError

from proxyd.config import Settings
from proxyd.oauth.tokens import MANAGEMENT_AUDIENCE, SCOPES, mint
from proxyd.store.embedded import socket_path, socket_url
from proxyd.store.redis import connect, describe


class IssueError(RuntimeError):
    """The token cannot be issued; the message says why and what to do."""


def redis_url_for(settings: Settings) -> str:
    """REDIS_URL, or the embedded redis-server's socket under PROXYD_DATA_DIR."""
    if settings.redis_url:
        return settings.redis_url
    if not socket_path(settings.data_path).exists():
        raise IssueError(
            f"proxyd's embedded Redis is not running (no socket under {settings.data_path}): "
            "start `proxyd serve` first, or set REDIS_URL / PROXYD_DATA_DIR to the ones it uses."
        )
    return socket_url(settings.data_path)


async def issue_token(
    settings: Settings,
    scopes: list[str],
    subject: str,
    ttl: int,
    audiences: list[str] | None = None,
) -> str:
    """A token for the management API, or (with audiences) for the protected proxies at those
    resource URLs, e.g. a service account calling https://api.example.com."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise IssueError(f"unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}.")
    for audience in audiences or ():
        parts = urlsplit(audience)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IssueError(f"audience {audience!r} must be a resource URL such as https://host.")
    url = redis_url_for(settings)
    try:
        client = connect(url)
        with trio.fail_after(5):
            async with client:
                return await mint(
                    client,
                    issuer=settings.issuer,
                    subject=subject,
                    scopes=scopes,
                    audience=audiences or MANAGEMENT_AUDIENCE,
                    ttl=ttl,
                    private_key_b64=settings.oauth_jwt_private_key_b64,
                )
    except* (OSError, trio.TooSlowError, ConnectionError, RedisConnectionError) as group:
        raise IssueError(
            f"cannot reach Redis at {describe(url)} ({type(group.exceptions[0]).__name__}): "
            "is `proxyd serve` running with the same settings?"
        ) from None
