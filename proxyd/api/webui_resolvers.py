"""GraphQL resolvers the web UI needs: `viewer` (who signed in, with which scopes),
`matchRoute` ("which route takes this request?") and `Health.workers`.

matchRoute decides with the edge's own matcher, proxyd.edge.routing.RouteTable, over the stored
proxy and routes, so the answer is the one the edge gives once it has applied the same
configuration. The per-route reasons use the compiled routes' own method set and path matcher.
"""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType, QueryType

from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.api.resolvers import guarded
from proxyd.edge.routing import CompiledRoute, RouteTable

query = QueryType()
health_type = ObjectType("Health")

MAX_PATH = 8192
METHOD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ-")


@query.field("viewer")
async def resolve_viewer(_, info) -> dict[str, Any]:
    context: ApiContext = info.context
    identity = context.identity
    if identity is None:  # the app authenticates before executing; this is defence in depth
        raise api_error("authentication required.", "UNAUTHENTICATED")
    exp = identity.claims.get("exp")
    return {
        "subject": identity.subject,
        "scopes": sorted(identity.scopes),
        "client_id": identity.client_id,
        "expires_at": exp if isinstance(exp, int) else None,
    }


@health_type.field("workers")
async def resolve_workers(_, info) -> int:
    return int(info.context.settings.workers)


def _route_reason(compiled: CompiledRoute, method: str, path: str) -> tuple[bool, str]:
    route = compiled.route
    if compiled.methods is not None and method not in compiled.methods:
        return False, f"method {method} is not one of {', '.join(sorted(compiled.methods))}."
    kind = "regex" if route.is_regex else "prefix"
    if not compiled.matches_path(path):
        return False, f"path does not match the {kind} {route.path_pattern!r}."
    return True, f"path matches the {kind} {route.path_pattern!r} (priority {route.priority})."


def _target(route_type: str, value: str) -> str:
    return f"{route_type}:{value}"


@query.field("matchRoute")
@guarded("user")
async def resolve_match_route(_, info, hostname: str, path: str, method: str = "GET") -> dict:
    context: ApiContext = info.context
    hostname = hostname.strip().lower().rstrip(".")
    method = (method or "GET").strip().upper()
    if not method or len(method) > 32 or not set(method) <= METHOD_CHARS:
        raise api_error("method must be an HTTP method such as GET or POST.", "BAD_USER_INPUT")
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or len(path) > MAX_PATH:
        raise api_error("path must start with / (at most 8192 characters).", "BAD_USER_INPUT")
    answer: dict[str, Any] = {
        "hostname": hostname,
        "method": method,
        "path": path,
        "proxy": None,
        "route": None,
        "target": None,
        "candidates": [],
    }
    proxy = await context.store.get_proxy(hostname)
    if proxy is None:
        answer["reason"] = f"no proxy serves {hostname}: the edge answers 404."
        return answer
    answer["proxy"] = proxy
    table = RouteTable(await context.store.list_routes())
    applicable = table.for_proxy(proxy)
    winner = RouteTable.match(applicable, method, path)
    for compiled in applicable:
        matched, why = _route_reason(compiled, method, path)
        answer["candidates"].append({"route": compiled.route, "matched": matched, "reason": why})
    if winner is None:
        answer["target"] = proxy.target_url
        checked = (
            f"none of its {len(applicable)} routes match" if applicable else "no route applies"
        )
        answer["reason"] = (
            f"{checked} (route mode {proxy.route_mode}): the proxy's target serves it."
        )
        return answer
    answer["route"] = winner
    answer["target"] = _target(winner.target_type, winner.target_value)
    first = next(c for c in answer["candidates"] if c["route"] is winner)
    answer["reason"] = f"route {winner.route_id} wins: {first['reason']}"
    return answer


bindables = [query, health_type]
