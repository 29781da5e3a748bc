"""Limits on GraphQL operations: what one operation may ask for, checked on the parsed document
before validation and execution (both of which cost time proportional to the document), how
often one token may ask, and how many expensive resolvers run at once.

- Parsing stops after `max_tokens` lexical tokens.
- Per operation (fragments expanded, counted as executed): at most `max_aliases` aliased fields,
  `max_fields` field selections, `max_depth` levels, and a cost of at most `max_cost`. A field's
  cost is its declared weight (FIELD_COSTS; 1 for a field with a selection set, 0 for a leaf)
  plus its children's cost times its list size: the `limit` argument where the field has one,
  else DEFAULT_LIST_SIZE for list fields, else 1. requestStats' weight is its `hours`.
- Per token: a token bucket of `rate_per_minute` operations, refilled continuously.
- Expensive resolvers (EXPENSIVE) run under one CapacityLimiter per process, so a burst of them
  leaves the event loop to the edge that shares the process.

Over-limit operations get one error coded QUERY_TOO_COMPLEX (or RATE_LIMITED) and run nothing.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs
import trio
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    value_from_ast_untyped,
)
from graphql.pyutils import Undefined

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
RATE_LIMITED = "RATE_LIMITED"
DEFAULT_LIST_SIZE = 10
SIZE_ARGUMENTS = ("limit", "first", "last")

# Declared weights: a function of the field's arguments (defaults filled in from the schema).
FIELD_COSTS: dict[str, Callable[[dict[str, Any]], int]] = {
    "Query.requestStats": lambda args: _int(args.get("hours"), 24),
    "Query.requestLogs": lambda args: 5,
    "Query.applicationLogs": lambda args: 2,
}
EXPENSIVE = frozenset({"Query.requestStats", "Query.requestLogs", "Query.applicationLogs"})


def _int(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )


@attrs.frozen
class Limits:
    max_aliases: int = 50
    max_fields: int = 1000
    max_depth: int = 15
    max_cost: int = 5000
    max_tokens: int = 20000
    timeout: float = 3.0
    rate_per_minute: int = 600
    expensive_concurrency: int = 2

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(
            max_aliases=settings.graphql_max_aliases,
            max_fields=settings.graphql_max_fields,
            max_depth=settings.graphql_max_depth,
            max_cost=settings.graphql_max_cost,
            timeout=settings.graphql_timeout,
            rate_per_minute=settings.graphql_rate_limit,
            expensive_concurrency=settings.graphql_expensive_concurrency,
        )


class TooComplex(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": QUERY_TOO_COMPLEX})


@attrs.define
class _Count:
    aliases: int = 0
    fields: int = 0


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.count = _Count()

    def cost(
        self, selection_set: SelectionSetNode | None, parent: Any, depth: int, stack=()
    ) -> int:
        """Cost of selection_set on type `parent` (None: unknown type, counted but not typed)."""
        if selection_set is None:
            return 0
        if depth > self.limits.max_depth:
            raise TooComplex(
                f"the operation is nested more than {self.limits.max_depth} levels deep."
            )
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, depth, stack)
            elif isinstance(selection, InlineFragmentNode):
                on = selection.type_condition
                target = self.schema.get_type(on.name.value) if on else parent
                total += self.cost(selection.selection_set, target, depth, stack)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in stack:
                    continue  # unknown or cyclic: validation reports it
                target = self.schema.get_type(fragment.type_condition.name.value)
                total += self.cost(fragment.selection_set, target, depth, (*stack, name))
            if total > self.limits.max_cost:
                raise TooComplex(
                    f"the operation costs more than the budget of {self.limits.max_cost} "
                    "(fields times list sizes and hours): ask for less, or split it."
                )
        return total

    def _field(self, node: FieldNode, parent: Any, depth: int, stack: tuple) -> int:
        count = self.count
        count.fields += 1
        if node.alias is not None:
            count.aliases += 1
            if count.aliases > self.limits.max_aliases:
                raise TooComplex(f"the operation uses more than {self.limits.max_aliases} aliases.")
        if count.fields > self.limits.max_fields:
            raise TooComplex(f"the operation selects more than {self.limits.max_fields} fields.")
        name = node.name.value
        fields = getattr(parent, "fields", None) or {}
        definition = fields.get(name)
        if definition is None:  # __typename, introspection or a mistake validation will report
            return self.cost(node.selection_set, None, depth + 1, stack)
        args = {
            arg_name: arg.default_value
            for arg_name, arg in definition.args.items()
            if arg.default_value is not Undefined
        }
        for argument in node.arguments or ():
            try:
                args[argument.name.value] = value_from_ast_untyped(argument.value, self.variables)
            except Exception:  # noqa: BLE001, S112 - a malformed value: validation reports it
                continue
        key = f"{parent.name}.{name}"
        field_type = get_nullable_type(definition.type)
        weight_of = FIELD_COSTS.get(key)
        if weight_of is not None:
            weight = weight_of(args)
        else:
            weight = 1 if node.selection_set is not None else 0
        size = 1
        if is_list_type(field_type):
            size = DEFAULT_LIST_SIZE
        for size_arg in SIZE_ARGUMENTS:
            if size_arg in definition.args:
                size = _int(args.get(size_arg), size)
        children = self.cost(node.selection_set, get_named_type(field_type), depth + 1, stack)
        return weight + size * children


def check_document(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    limits: Limits,
) -> None:
    """Raise TooComplex if any operation in document is over a limit."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        root = schema.get_root_type(definition.operation)
        walker = _Walker(schema, fragments, variables or {}, limits)
        walker.cost(definition.selection_set, root, 1)


# --------------------------------------------------------------------------- per-token rate


class RateLimiter:
    """Token buckets by API token (a hash of it); the least recently used beyond `size` go."""

    def __init__(self, per_minute: int, size: int = 10000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.size = size
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, token: str) -> float:
        """0 if the operation may run now, else the seconds until it may."""
        key = hashlib.sha256(token.encode()).hexdigest()[:32]
        now = time.monotonic()
        level, last = self._buckets.pop(key, (self.capacity, now))
        level = min(self.capacity, level + (now - last) * self.rate)
        wait = 0.0
        if level >= 1:
            level -= 1
        else:
            wait = max(0.001, (1 - level) / self.rate)
        self._buckets[key] = (level, now)
        if len(self._buckets) > self.size:
            self._buckets.popitem(last=False)
        return wait


def rate_key(identity: Any) -> str:
    """Whose bucket an operation takes from: the token's jti (else its subject)."""
    claims = getattr(identity, "claims", None) or {}
    return str(claims.get("jti") or getattr(identity, "subject", ""))


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


# --------------------------------------------------------------------------- bounded resolvers

_limiters: dict[int, trio.CapacityLimiter] = {}


def expensive_middleware(concurrency: int) -> Callable[..., Any]:
    """graphql-core middleware: resolvers in EXPENSIVE wait for a slot of a per-process limiter."""
    limiter = _limiters.get(concurrency)
    if limiter is None:
        limiter = _limiters[concurrency] = trio.CapacityLimiter(concurrency)

    def middleware(next_: Callable[..., Any], obj: Any, info: Any, **kwargs: Any) -> Any:
        if f"{info.parent_type.name}.{info.field_name}" not in EXPENSIVE:
            return next_(obj, info, **kwargs)

        async def bounded() -> Any:
            async with limiter:
                result = next_(obj, info, **kwargs)
                if hasattr(result, "__await__"):
                    result = await result
                return result

        return bounded()

    return middleware
