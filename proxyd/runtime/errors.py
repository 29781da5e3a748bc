"""Startup errors and finding them inside trio's exception groups (kept free of heavy imports, so
the worker supervisor can use them without loading the whole application)."""

from __future__ import annotations


class StartupError(RuntimeError):
    """proxyd cannot start; the message is one sentence saying why and what to do."""


def find_exception(exc: BaseException, types: tuple) -> BaseException | None:
    """The first exception of one of types in exc or, recursively, in its exception groups."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_exception(inner, types)
            if found is not None:
                return found
    return None
