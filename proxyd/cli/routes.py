"""`proxyd route list|show|create|delete`: path rules that send matching requests to a target."""

from __future__ import annotations

import argparse
from typing import Any

from proxyd.cli.errors import CliError
from proxyd.cli.options import call
from proxyd.cli.output import print_fields, print_json, print_table, report

TARGET_TYPES = ("port", "service", "hostname", "url")
SCOPES = ("global", "proxy")

ROUTE_FIELDS = """
    routeId pathPattern isRegex targetType targetValue priority methods enabled scope
    proxyHostnames description createdAt
"""
LIST = f"query {{ routes {{ {ROUTE_FIELDS} }} }}"
SHOW = f"query($routeId: String!) {{ route(routeId: $routeId) {{ {ROUTE_FIELDS} }} }}"
CREATE = f"""
mutation($input: CreateRouteInput!) {{ createRoute(input: $input) {{ {ROUTE_FIELDS} }} }}
"""
DELETE = "mutation($routeId: String!) { deleteRoute(routeId: $routeId) }"


def _path(route: dict[str, Any]) -> str:
    return f"{route['pathPattern']} (regex)" if route["isRegex"] else route["pathPattern"]


def _scope(route: dict[str, Any]) -> str:
    if route["scope"] == "proxy":
        return "proxy:" + ",".join(route["proxyHostnames"])
    return route["scope"]


def _list(args: argparse.Namespace) -> int:
    data = call(args, LIST)
    if args.json:
        print_json(data)
        return 0
    rows = [
        (
            r["routeId"],
            r["priority"],
            _path(r),
            r["methods"] or "any",
            f"{r['targetType']}:{r['targetValue']}",
            _scope(r),
            r["enabled"],
        )
        for r in data["routes"]
    ]
    headers = ("ID", "PRIORITY", "PATH", "METHODS", "TARGET", "SCOPE", "ENABLED")
    print_table(headers, rows, "no routes")
    return 0


def _show(args: argparse.Namespace) -> int:
    data = call(args, SHOW, {"routeId": args.route_id})
    if data.get("route") is None:
        raise CliError(f"no route with id {args.route_id} (NOT_FOUND).")
    if args.json:
        print_json(data)
    else:
        print_fields(data["route"])
    return 0


def _methods(text: str) -> list[str]:
    methods = [m.strip().upper() for m in text.split(",") if m.strip()]
    if not methods:
        raise argparse.ArgumentTypeError("expected HTTP methods such as GET,POST")
    return methods


def _create(args: argparse.Namespace) -> int:
    scope = args.scope or ("proxy" if args.proxy else None)
    fields = {
        "routeId": args.id,
        "pathPattern": args.path,
        "isRegex": args.regex or None,
        "targetType": args.target_type,
        "targetValue": args.target_value,
        "priority": args.priority,
        "methods": args.methods,
        "enabled": False if args.disabled else None,
        "scope": scope,
        "proxyHostnames": args.proxy,
        "description": args.description,
    }
    data = call(args, CREATE, {"input": {k: v for k, v in fields.items() if v is not None}})
    route = data["createRoute"]
    target = f"{route['targetType']}:{route['targetValue']}"
    report(args, data, f"created route {route['routeId']}: {_path(route)} -> {target}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    data = call(args, DELETE, {"routeId": args.route_id})
    report(args, data, f"deleted route {args.route_id}")
    return 0


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    """Add the `route` command group to the top-level subcommands."""
    group = sub.add_parser("route", help="routes: path rules checked before a proxy's target")
    actions = group.add_subparsers(dest="route_command", required=True, metavar="ACTION")

    actions.add_parser(
        "list", parents=[api], help="list routes, highest priority first"
    ).set_defaults(func=_list)

    show = actions.add_parser("show", parents=[api], help="show every field of one route")
    show.add_argument("route_id", metavar="ID")
    show.set_defaults(func=_show)

    create = actions.add_parser("create", parents=[api], help="create a route")
    create.add_argument("path", metavar="PATH", help="path prefix (or a regex with --regex)")
    create.add_argument(
        "target_type",
        metavar="TARGET_TYPE",
        choices=TARGET_TYPES,
        help="port, service, hostname or url",
    )
    create.add_argument(
        "target_value",
        metavar="TARGET_VALUE",
        help="the port number, service name, hostname or URL",
    )
    create.add_argument("--id", help="route id (default: made from the path and priority)")
    create.add_argument("--priority", type=int, help="higher is checked first (default 50)")
    create.add_argument(
        "--methods",
        type=_methods,
        metavar="GET,POST",
        help="only these HTTP methods (default: any)",
    )
    create.add_argument("--regex", action="store_true", help="PATH is a regular expression")
    create.add_argument(
        "--scope", choices=SCOPES, help="global (every proxy) or proxy (only --proxy hostnames)"
    )
    create.add_argument(
        "--proxy",
        action="append",
        metavar="HOSTNAME",
        help="a proxy the route applies to; repeatable (implies --scope proxy)",
    )
    create.add_argument("--description", metavar="TEXT")
    create.add_argument("--disabled", action="store_true", help="create the route disabled")
    create.set_defaults(func=_create)

    delete = actions.add_parser("delete", parents=[api], help="delete a route")
    delete.add_argument("route_id", metavar="ID")
    delete.set_defaults(func=_delete)
