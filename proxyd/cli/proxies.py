"""`proxyd proxy list|show|create|update|delete`: proxies (hostname -> target) over GraphQL."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from proxyd.cli.errors import CliError
from proxyd.cli.options import as_dict, call, key_value
from proxyd.cli.output import print_fields, print_json, print_table, report

PROXY_FIELDS = """
    hostname targetUrl certName createdBy createdAt updatedAt enabled enableHttp enableHttps
    preserveHostHeader customHeaders customResponseHeaders
    authEnabled authProxy authMode authRequiredUsers authRequiredEmails authRequiredGroups
    authAllowedScopes authAllowedAudiences authPassHeaders authCookieName authHeaderPrefix
    authExcludedPaths routeMode enabledRoutes disabledRoutes
    resourceEndpoint resourceScopes resourceStateful resourceVersions resourceServerInfo
    resourceOverrideBackend resourceBearerMethods resourceDocumentationSuffix
    resourceCustomMetadata routes { routeId }
"""

LIST = """
query { proxies { hostname targetUrl enabled enableHttp enableHttps authEnabled authProxy } }
"""
SHOW = f"query($hostname: String!) {{ proxy(hostname: $hostname) {{ {PROXY_FIELDS} }} }}"
CREATE = f"""
mutation($input: CreateProxyInput!) {{ createProxy(input: $input) {{ {PROXY_FIELDS} }} }}
"""
UPDATE = f"""
mutation($hostname: String!, $input: UpdateProxyInput!) {{
  updateProxy(hostname: $hostname, input: $input) {{ {PROXY_FIELDS} }}
}}
"""
DELETE = "mutation($hostname: String!) { deleteProxy(hostname: $hostname) }"


def _auth(proxy: dict[str, Any]) -> str:
    if not proxy.get("authEnabled"):
        return "-"
    return proxy.get("authProxy") or "on"


def show_proxy(proxy: dict[str, Any]) -> None:
    record = dict(proxy)
    record["routes"] = [r["routeId"] for r in record.get("routes") or []]
    print_fields(record)


def _list(args: argparse.Namespace) -> int:
    data = call(args, LIST)
    if args.json:
        print_json(data)
        return 0
    rows = [
        (p["hostname"], p["targetUrl"], p["enabled"], p["enableHttp"], p["enableHttps"], _auth(p))
        for p in data["proxies"]
    ]
    print_table(("HOSTNAME", "TARGET", "ENABLED", "HTTP", "HTTPS", "AUTH"), rows, "no proxies")
    return 0


def _show(args: argparse.Namespace) -> int:
    data = call(args, SHOW, {"hostname": args.hostname})
    if data.get("proxy") is None:
        raise CliError(f"no proxy for {args.hostname} (NOT_FOUND).")
    if args.json:
        print_json(data)
    else:
        show_proxy(data["proxy"])
    return 0


def _create(args: argparse.Namespace) -> int:
    fields = {
        "hostname": args.hostname,
        "targetUrl": args.target_url,
        "enableHttp": args.http,
        "enableHttps": args.https,
        "preserveHostHeader": args.preserve_host,
        "customHeaders": as_dict(args.header),
        "customResponseHeaders": as_dict(args.response_header),
        "certName": args.cert_name,
        "certEmail": args.email,
        "redirectToHttps": args.redirect_to_https,
    }
    data = call(args, CREATE, {"input": {k: v for k, v in fields.items() if v is not None}})
    proxy = data["createProxy"]
    report(args, data, f"created proxy {proxy['hostname']} -> {proxy['targetUrl']}")
    return 0


def _update(args: argparse.Namespace) -> int:
    fields = {
        "targetUrl": args.target,
        "enabled": args.enabled,
        "enableHttp": args.http,
        "enableHttps": args.https,
        "preserveHostHeader": args.preserve_host,
        "customHeaders": as_dict(args.header),
        "customResponseHeaders": as_dict(args.response_header),
        "redirectToHttps": args.redirect_to_https,
        "certEmail": args.email,
    }
    changes = {k: v for k, v in fields.items() if v is not None}
    if not changes:
        raise CliError("nothing to update: give at least one option (see --help).", 2)
    data = call(args, UPDATE, {"hostname": args.hostname, "input": changes})
    report(args, data, f"updated proxy {data['updateProxy']['hostname']}: {', '.join(changes)}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not args.yes and sys.stdin.isatty():
        try:
            answer = input(f"Delete proxy {args.hostname}? [y/N] ").strip().lower()
        except EOFError:
            answer = ""
        if answer not in ("y", "yes"):
            raise CliError("not deleted.")
    data = call(args, DELETE, {"hostname": args.hostname})
    report(args, data, f"deleted proxy {args.hostname}")
    return 0


def _header_options(parser: argparse.ArgumentParser, replaces: bool) -> None:
    note = " (replaces the proxy's whole set: repeat for every header to keep)" if replaces else ""
    parser.add_argument(
        "--header",
        action="append",
        type=key_value,
        metavar="NAME=VALUE",
        help=f"header added to requests sent to the target; repeatable{note}",
    )
    parser.add_argument(
        "--response-header",
        action="append",
        type=key_value,
        metavar="NAME=VALUE",
        help=f"header added to responses sent to clients; repeatable{note}",
    )


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    """Add the `proxy` command group to the top-level subcommands."""
    group = sub.add_parser("proxy", help="proxies: which hostname goes to which target URL")
    actions = group.add_subparsers(dest="proxy_command", required=True, metavar="ACTION")

    actions.add_parser("list", parents=[api], help="list proxies").set_defaults(func=_list)

    show = actions.add_parser("show", parents=[api], help="show every field of one proxy")
    show.add_argument("hostname", metavar="HOSTNAME")
    show.set_defaults(func=_show)

    create = actions.add_parser("create", parents=[api], help="create a proxy")
    create.add_argument("hostname", metavar="HOSTNAME", help="the hostname clients ask for")
    create.add_argument("target_url", metavar="TARGET_URL", help="http(s):// URL to forward to")
    create.add_argument(
        "--no-http",
        dest="http",
        action="store_false",
        default=None,
        help="do not serve this hostname over plain HTTP",
    )
    create.add_argument(
        "--no-https",
        dest="https",
        action="store_false",
        default=None,
        help="do not serve this hostname over HTTPS",
    )
    create.add_argument(
        "--no-preserve-host",
        dest="preserve_host",
        action="store_false",
        default=None,
        help="send the target's host as Host, not the client's",
    )
    _header_options(create, replaces=False)
    create.add_argument("--cert-name", metavar="NAME", help="certificate to serve HTTPS with")
    create.add_argument(
        "--email", metavar="EMAIL", help="ACME account email for its certificate (ADMIN_EMAIL)"
    )
    create.add_argument(
        "--redirect-to-https",
        action="store_true",
        default=None,
        help="answer plain-HTTP requests with a redirect to HTTPS",
    )
    create.set_defaults(func=_create)

    update = actions.add_parser(
        "update", parents=[api], help="change a proxy; only the options given change"
    )
    update.add_argument("hostname", metavar="HOSTNAME")
    update.add_argument("--target", metavar="URL", help="new http(s):// target URL")
    toggle = update.add_mutually_exclusive_group()
    toggle.add_argument(
        "--enable", dest="enabled", action="store_true", default=None, help="serve this proxy"
    )
    toggle.add_argument(
        "--disable",
        dest="enabled",
        action="store_false",
        default=None,
        help="stop serving this proxy (keeps its configuration)",
    )
    flag = argparse.BooleanOptionalAction
    update.add_argument("--http", action=flag, help="serve over plain HTTP")
    update.add_argument("--https", action=flag, help="serve over HTTPS")
    update.add_argument(
        "--preserve-host", action=flag, help="send the client's Host header to the target"
    )
    update.add_argument(
        "--redirect-to-https", action=flag, help="redirect plain-HTTP requests to HTTPS"
    )
    update.add_argument("--email", metavar="EMAIL", help="ACME account email for its certificate")
    _header_options(update, replaces=True)
    update.set_defaults(func=_update)

    delete = actions.add_parser("delete", parents=[api], help="delete a proxy")
    delete.add_argument("hostname", metavar="HOSTNAME")
    delete.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask for confirmation (never asked when stdin is not a TTY)",
    )
    delete.set_defaults(func=_delete)
