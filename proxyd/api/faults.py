"""What the management API says when Redis fails: how to recognise an exception that means Redis
cannot be reached, the one error (SERVICE_UNAVAILABLE, one sentence) that answers it, and the
probe that tells an operation that is merely slow from one stuck on a Redis that hangs.
"""

from __future__ import annotations

from typing import Any

import trio
from coredis.exceptions import ConnectionError as RedisConnectionError

from proxyd.manage.errors import REDIS_UNAVAILABLE as REDIS_UNAVAILABLE_MESSAGE

SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


def redis_unavailable(exc: BaseException | None) -> bool:
    """Whether exc (or an exception it groups or wraps) means Redis cannot be reached."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, BaseExceptionGroup):
            return any(redis_unavailable(inner) for inner in exc.exceptions)
        if isinstance(exc, RedisConnectionError | OSError | TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def unavailable_response() -> dict[str, Any]:
    return {
        "errors": [
            {"message": REDIS_UNAVAILABLE_MESSAGE, "extensions": {"code": SERVICE_UNAVAILABLE}}
        ]
    }


class Probe:
    """Pings Redis once, after a delay, to tell a slow operation from a Redis that hangs."""

    answered = False

    async def run(self, redis: Any, delay: float) -> None:
        await trio.sleep(delay)
        try:
            await redis.ping()
            self.answered = True
        except Exception:  # noqa: BLE001 - any failure means Redis is not answering
            return
