"""Trio-native GraphQL execution: queries, mutations and subscriptions, plus client-safe errors.

graphql-core 3.2 gathers concurrent fields and list items with ``asyncio.gather`` and maps
subscription streams with an asyncio-based iterator; neither works under trio. This module owns
the trio replacements (``TrioExecutionContext``, ``gather``, ``subscribe``) and the single entry
point used to run operations (``execute``), with the limits checked before execution. The error
codes and their formatting live in proxyd.api.errors (re-exported here for the resolvers).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Iterable
from typing import Any, cast

import trio
from ariadne import graphql as ariadne_graphql
from graphql import (
    DocumentNode,
    ExecutionContext,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationType,
    get_operation_ast,
    located_error,
    parse,
    validate,
)
from graphql import execute as graphql_execute
from graphql.execution.subscribe import create_source_event_stream
from graphql.pyutils import AwaitableOrValue, Path, Undefined, is_iterable

from proxyd.api.errors import (
    BAD_USER_INPUT,
    CONFLICT,
    ERROR_CODES,
    FORBIDDEN,
    INTERNAL_SERVER_ERROR,
    INTERNAL_SERVER_ERROR_MESSAGE,
    NOT_FOUND,
    TIMEOUT,
    UNAUTHENTICATED,
    ApiError,
    api_error,
    ariadne_log,
    error_to_dict,
    errors_only,
    format_error,
    result_to_dict,
)
from proxyd.api.faults import (
    SERVICE_UNAVAILABLE,
    Probe,
    unavailable_response,
)
from proxyd.api.limits import (
    QUERY_TOO_COMPLEX,
    RATE_LIMITED,
    Limits,
    TooComplex,
    check_document,
    expensive_middleware,
)

__all__ = [
    "BAD_USER_INPUT",
    "CONFLICT",
    "ERROR_CODES",
    "FORBIDDEN",
    "INTERNAL_SERVER_ERROR",
    "INTERNAL_SERVER_ERROR_MESSAGE",
    "NOT_FOUND",
    "QUERY_TOO_COMPLEX",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "TIMEOUT",
    "UNAUTHENTICATED",
    "ApiError",
    "TrioExecutionContext",
    "api_error",
    "error_to_dict",
    "execute",
    "gather",
    "subscribe",
]

logger = logging.getLogger("proxyd.api")

# --------------------------------------------------------------------------- concurrency


async def gather(*awaitables: Awaitable[Any]) -> list[Any]:
    """Await ``awaitables`` concurrently in a trio nursery and return their results in order.

    Mirrors ``asyncio.gather`` (without ``return_exceptions``): the first exception raised by
    any awaitable propagates unchanged (never wrapped in an ExceptionGroup), so graphql-core's
    ``except Exception`` handlers see exactly what they would under asyncio. Unlike asyncio,
    the remaining awaitables are cancelled rather than left running unsupervised.
    """
    if not awaitables:
        return []
    if len(awaitables) == 1:
        return [await awaitables[0]]

    results: list[Any] = [None] * len(awaitables)
    failures: list[Exception] = []

    async def run(index: int, awaitable: Awaitable[Any], scope: trio.CancelScope) -> None:
        try:
            results[index] = await awaitable
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside the nursery
            # Only the first failure matters; anything a sibling raises while being
            # cancelled afterwards is a consequence of that failure.
            if not failures:
                failures.append(exc)
                scope.cancel()

    async with trio.open_nursery() as nursery:
        for index, awaitable in enumerate(awaitables):
            nursery.start_soon(run, index, awaitable, nursery.cancel_scope)
    if failures:
        raise failures[0]
    return results


class TrioExecutionContext(ExecutionContext):
    """graphql-core execution context that awaits sibling fields and list items with trio.

    Only ``execute_fields`` and ``complete_list_value`` differ from the base class, and only
    in how pending awaitables are awaited (``gather`` above instead of ``asyncio.gather``).
    """

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        fields: dict[str, list[FieldNode]],
    ) -> AwaitableOrValue[dict[str, Any]]:
        """Execute the given fields, awaiting the asynchronous ones concurrently."""
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        pending: list[str] = []
        for response_name, field_nodes in fields.items():
            field_path = Path(path, response_name, parent_type.name)
            result = self.execute_field(parent_type, source_value, field_nodes, field_path)
            if result is Undefined:
                continue
            results[response_name] = result
            if is_awaitable(result):
                pending.append(response_name)

        if not pending:
            return results

        async def resolve_pending() -> dict[str, Any]:
            values = await gather(*(results[name] for name in pending))
            results.update(zip(pending, values, strict=True))
            return results

        return resolve_pending()

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_nodes: list[FieldNode],
        info: GraphQLResolveInfo,
        path: Path,
        result: AsyncIterable[Any] | Iterable[Any],
    ) -> AwaitableOrValue[list[Any]]:
        """Complete every item of a list value, awaiting asynchronous items concurrently."""
        if not is_iterable(result):
            # graphql-core's experimental support for async iterables as list values.
            if isinstance(result, AsyncIterable):
                async_result = result

                async def collect_then_complete() -> Any:
                    items = [item async for item in async_result]
                    completed = self.complete_list_value(
                        return_type, field_nodes, info, path, items
                    )
                    return await completed if self.is_awaitable(completed) else completed

                return collect_then_complete()

            raise GraphQLError(
                "Expected Iterable, but did not find one for field"
                f" '{info.parent_type.name}.{info.field_name}'."
            )

        item_type = return_type.of_type
        is_awaitable = self.is_awaitable
        completed_results: list[Any] = []
        pending: list[int] = []
        for index, item in enumerate(cast(Iterable[Any], result)):
            item_path = path.add_key(index, None)
            completed_item = self._complete_list_item(item_type, field_nodes, info, item_path, item)
            if is_awaitable(completed_item):
                pending.append(index)
            completed_results.append(completed_item)

        if not pending:
            return completed_results

        async def resolve_pending() -> list[Any]:
            values = await gather(*(completed_results[index] for index in pending))
            for index, value in zip(pending, values, strict=True):
                completed_results[index] = value
            return completed_results

        return resolve_pending()

    def _complete_list_item(
        self,
        item_type: GraphQLOutputType,
        field_nodes: list[FieldNode],
        info: GraphQLResolveInfo,
        item_path: Path,
        item: Any,
    ) -> AwaitableOrValue[Any]:
        """Complete one list item, turning its errors into field errors as graphql-core does."""

        def field_error(raw_error: Exception) -> None:
            # Re-raises for non-null item types (null bubbling), else records the error.
            error = located_error(raw_error, field_nodes, item_path.as_list())
            self.handle_field_error(error, item_type)

        if self.is_awaitable(item):

            async def await_then_complete() -> Any:
                try:
                    completed = self.complete_value(
                        item_type, field_nodes, info, item_path, await item
                    )
                    if self.is_awaitable(completed):
                        return await completed
                    return completed
                except Exception as raw_error:  # noqa: BLE001 - becomes a GraphQL field error
                    field_error(raw_error)
                    return None

            return await_then_complete()

        try:
            completed = self.complete_value(item_type, field_nodes, info, item_path, item)
        except Exception as raw_error:  # noqa: BLE001 - becomes a GraphQL field error
            field_error(raw_error)
            return None

        if self.is_awaitable(completed):

            async def await_completed() -> Any:
                try:
                    return await completed
                except Exception as raw_error:  # noqa: BLE001 - becomes a GraphQL field error
                    field_error(raw_error)
                    return None

            return await_completed()
        return completed


# --------------------------------------------------------------------------- errors


def _check_request(query: Any, variables: Any, operation_name: Any) -> None:
    if not query or not isinstance(query, str):
        raise GraphQLError("The query must be a string.")
    if variables is not None and not isinstance(variables, dict):
        raise GraphQLError("Query variables must be a null or an object.")
    if operation_name is not None and not isinstance(operation_name, str):
        raise GraphQLError("The operation name must be a null or a string.")


# --------------------------------------------------------------------------- entry points


async def execute(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context_value: Any,
    root_value: Any = None,
) -> dict[str, Any]:
    """Run a query or mutation under trio and return the JSON-ready response.

    The response is ``{"data": ..., "errors": [...]}`` with ``errors`` omitted when empty;
    syntax, validation and other request errors produce ``{"errors": [...]}`` without
    ``data``. Subscription operations are rejected (use ``subscribe``). As with ariadne, a
    callable ``root_value`` is called to produce the root value.

    With ``context_value.limits`` (proxyd.api.limits.Limits) set, the document is checked
    against them before it is validated, expensive resolvers share a per-process limiter, and
    the operation gets ``limits.timeout`` seconds: past that it is cancelled and answered
    SERVICE_UNAVAILABLE if Redis is not answering either, else TIMEOUT. When any field failed
    because Redis is unreachable, the whole answer is one SERVICE_UNAVAILABLE error.
    """
    limits: Limits | None = getattr(context_value, "limits", None)
    try:
        _check_request(query, variables, operation_name)
        document = parse(query, max_tokens=limits.max_tokens if limits else None)
        if limits is not None:
            check_document(schema, document, variables, limits)
    except TooComplex as error:
        return errors_only([error])
    except GraphQLError as error:
        if limits is not None and "tokens" in error.message and "more than" in error.message:
            return errors_only(
                [TooComplex(f"the operation is longer than {limits.max_tokens} tokens.")]
            )
        return errors_only([error])
    if limits is None:
        return await _run(
            schema, query, document, variables, operation_name, context_value, root_value
        )

    redis = getattr(getattr(context_value, "store", None), "redis", None)
    probe = Probe()
    response: dict[str, Any] | None = None
    with trio.move_on_after(limits.timeout):
        async with trio.open_nursery() as nursery:
            if redis is not None:
                nursery.start_soon(probe.run, redis, limits.timeout / 2)
            response = await _run(
                schema,
                query,
                document,
                variables,
                operation_name,
                context_value,
                root_value,
                middleware=[expensive_middleware(limits.expensive_concurrency)],
            )
            nursery.cancel_scope.cancel()
    if response is None:
        if redis is not None and not probe.answered:
            return unavailable_response()
        return errors_only(
            [
                ApiError(
                    f"the operation did not finish within {limits.timeout:g} s "
                    "(GRAPHQL_TIMEOUT): ask for less.",
                    TIMEOUT,
                )
            ]
        )
    codes = [(e.get("extensions") or {}).get("code") for e in response.get("errors") or ()]
    if SERVICE_UNAVAILABLE in codes:
        return unavailable_response()
    return response


async def _run(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context_value: Any,
    root_value: Any,
    middleware: list[Any] | None = None,
) -> dict[str, Any]:
    try:
        _, response = await ariadne_graphql(
            schema,
            {"query": query, "variables": variables, "operationName": operation_name},
            context_value=context_value,
            root_value=root_value,
            query_document=document,
            debug=False,
            logger=ariadne_log,
            error_formatter=format_error,
            middleware=middleware,
            execution_context_class=TrioExecutionContext,
        )
    except Exception as exc:  # noqa: BLE001 - a bug outside resolvers; never leak it
        return {"errors": [error_to_dict(exc)]}
    return cast(dict[str, Any], response)


async def subscribe(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context_value: Any,
) -> AsyncGenerator[dict[str, Any], None] | dict[str, Any]:
    """Start a subscription operation under trio.

    Returns ``{"errors": [...]}`` if the request is invalid or the source stream cannot be
    created; otherwise an async generator yielding one response dict (as from ``execute``) per
    source event. ``aclose()`` on the generator closes the source stream. An exception raised
    by the source stream ends the generator after one final ``{"data": None, "errors": [...]}``.
    """
    limits: Limits | None = getattr(context_value, "limits", None)
    try:
        _check_request(query, variables, operation_name)
        document = parse(query, max_tokens=limits.max_tokens if limits else None)
        if limits is not None:
            check_document(schema, document, variables, limits)
    except GraphQLError as error:
        return errors_only([error])

    validation_errors = validate(schema, document)
    if validation_errors:
        return errors_only(validation_errors)

    operation = get_operation_ast(document, operation_name)
    if operation is not None and operation.operation is not OperationType.SUBSCRIPTION:
        return errors_only(
            [GraphQLError(f"Operation is a {operation.operation.value}, not a subscription.")]
        )

    try:
        stream = await create_source_event_stream(
            schema, document, None, context_value, variables, operation_name
        )
    except Exception as exc:  # noqa: BLE001 - e.g. a source that is not an async iterable
        return {"errors": [error_to_dict(exc)]}
    if isinstance(stream, ExecutionResult):
        return errors_only(stream.errors or [])
    return _map_source_events(stream, schema, document, variables, operation_name, context_value)


async def _map_source_events(
    stream: AsyncIterable[Any],
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context_value: Any,
) -> AsyncGenerator[dict[str, Any], None]:
    """Execute the subscription selection once per source event (MapSourceToResponseEvent)."""
    source = aiter(stream)
    try:
        while True:
            try:
                event = await anext(source)
            except StopAsyncIteration:
                return
            except Exception as exc:  # noqa: BLE001 - reported to the client, then stop
                yield {"data": None, "errors": [error_to_dict(exc)]}
                return
            result = graphql_execute(
                schema,
                document,
                root_value=event,
                context_value=context_value,
                variable_values=variables,
                operation_name=operation_name,
                execution_context_class=TrioExecutionContext,
            )
            if isinstance(result, ExecutionResult):
                yield result_to_dict(result)
            else:
                yield result_to_dict(await result)
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
