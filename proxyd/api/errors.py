"""The management API's errors: the codes every client sees in `extensions.code`, the error
type resolvers raise (`api_error`), and the formatting that keeps deliberate errors, answers a
Redis failure with SERVICE_UNAVAILABLE and one sentence, and masks anything unexpected as an
opaque INTERNAL_SERVER_ERROR (logged here, never sent)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

from ariadne import format_error as ariadne_format_error
from graphql import ExecutionResult, GraphQLError

from proxyd.api.faults import (
    REDIS_UNAVAILABLE_MESSAGE,
    SERVICE_UNAVAILABLE,
    redis_unavailable,
    unavailable_response,
)
from proxyd.api.limits import QUERY_TOO_COMPLEX, RATE_LIMITED

logger = logging.getLogger("proxyd.api")

BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
CONFLICT = "CONFLICT"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE"  # Docker cannot be reached (proxyd.docker)
DOCKER_ERROR = "DOCKER_ERROR"  # Docker answered with an error
TIMEOUT = "TIMEOUT"
ERROR_CODES = frozenset(
    {
        BAD_USER_INPUT,
        NOT_FOUND,
        CONFLICT,
        UNAUTHENTICATED,
        FORBIDDEN,
        INTERNAL_SERVER_ERROR,
        SERVICE_UNAVAILABLE,
        TIMEOUT,
        QUERY_TOO_COMPLEX,
        RATE_LIMITED,
        DOCKER_UNAVAILABLE,
        DOCKER_ERROR,
    }
)
INTERNAL_SERVER_ERROR_MESSAGE = "Internal server error"


class ApiError(GraphQLError):
    """A deliberate, client-facing GraphQL error carrying ``extensions.code``."""

    def __init__(self, message: str, code: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown API error code {code!r}")
        super().__init__(message, extensions={"code": code})

    @property
    def code(self) -> str:
        """The machine-readable error code (one of ``ERROR_CODES``)."""
        return cast(str, self.extensions["code"])


def api_error(message: str, code: str) -> GraphQLError:
    """Build an error for a resolver to raise; ``code`` ends up in ``extensions.code``."""
    return ApiError(message, code)


def _unexpected_cause(error: GraphQLError) -> BaseException | None:
    """Return the exception behind ``error`` if it was not raised deliberately, else None.

    Errors raised while resolving fields are wrapped by graphql-core (``located_error``) and
    carry a ``path``. If the wrapped exception is a GraphQLError, a resolver (or graphql-core
    itself, e.g. scalar serialisation) raised it on purpose; anything else is a bug or an
    infrastructure failure whose message must not reach the client. Request-level errors
    (syntax, validation, variable coercion) have no path and are always client-facing.
    """
    cause = error.original_error
    if cause is None or isinstance(cause, GraphQLError) or error.path is None:
        return None
    return cause


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """Ariadne error formatter: keep deliberate errors, mask unexpected ones (never debug)."""
    cause = _unexpected_cause(error)
    if cause is None:
        return ariadne_format_error(error, debug=False)
    if redis_unavailable(cause):
        logger.warning("Redis unavailable while resolving %s: %r", error.path, cause)
        formatted = dict(error.formatted)
        formatted["message"] = REDIS_UNAVAILABLE_MESSAGE
        formatted["extensions"] = {"code": SERVICE_UNAVAILABLE}
        return formatted
    logger.exception(
        "Unhandled exception while resolving GraphQL path %s", error.path, exc_info=cause
    )
    formatted: dict[str, Any] = dict(error.formatted)
    formatted["message"] = INTERNAL_SERVER_ERROR_MESSAGE
    formatted["extensions"] = {"code": INTERNAL_SERVER_ERROR}
    return formatted


def error_to_dict(exc: Exception) -> dict[str, Any]:
    """Format any exception as a client-safe GraphQL error dict.

    GraphQLErrors keep their message and extensions; any other exception is logged and
    reported as ``Internal server error`` / ``INTERNAL_SERVER_ERROR``.
    """
    if isinstance(exc, GraphQLError):
        return format_error(exc)
    if redis_unavailable(exc):
        logger.warning("Redis unavailable in the GraphQL API: %r", exc)
        return unavailable_response()["errors"][0]
    logger.exception("Unhandled exception in GraphQL API", exc_info=exc)
    return {
        "message": INTERNAL_SERVER_ERROR_MESSAGE,
        "extensions": {"code": INTERNAL_SERVER_ERROR},
    }


class _AriadneErrorLog(logging.LoggerAdapter):
    """Ariadne logs every GraphQL error at ERROR with a traceback, including routine client
    mistakes. Demote those to DEBUG; unexpected exceptions are logged by ``format_error``."""

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.debug("GraphQL error: %s", msg)


ariadne_log = _AriadneErrorLog(logger)


def errors_only(errors: Iterable[GraphQLError]) -> dict[str, Any]:
    return {"errors": [format_error(error) for error in errors]}


def result_to_dict(result: ExecutionResult) -> dict[str, Any]:
    response: dict[str, Any] = {"data": result.data}
    if result.errors:
        response["errors"] = [format_error(error) for error in result.errors]
    return response
