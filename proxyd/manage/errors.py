"""ManageError (one sentence + a code) and the translation of store exceptions into it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from proxyd.store.models import ValidationError
from proxyd.store.repository import Conflict, NotFound

if TYPE_CHECKING:
    from proxyd.config import Settings
    from proxyd.store.repository import Store


REDIS_UNAVAILABLE = (
    "Redis is not answering, so proxyd cannot read or change its configuration right now "
    "(proxying goes on); try again shortly."
)


class ManageError(Exception):
    """An operation failed for a reason the caller should see: `message` is one sentence,
    `code` the GraphQL extensions.code (BAD_USER_INPUT, NOT_FOUND, CONFLICT, ...)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ManageContext(Protocol):
    """What the operations need (proxyd.api.context.ApiContext provides it)."""

    settings: Settings
    store: Store
    manager: Any
    certs: Any
    request_log: Any

    @property
    def actor(self) -> str | None: ...


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn store exceptions into ManageError with the codes GraphQL has always used."""
    try:
        yield
    except ValidationError as exc:
        raise ManageError(str(exc), "BAD_USER_INPUT") from None
    except NotFound as exc:
        raise ManageError(str(exc), "NOT_FOUND") from None
    except Conflict as exc:
        raise ManageError(str(exc), "CONFLICT") from None
    except TypeError as exc:  # e.g. a required field missing from a model
        raise ManageError(f"invalid input: {exc}", "BAD_USER_INPUT") from None


def hostname_key(hostname: str) -> str:
    return hostname.strip().lower()
