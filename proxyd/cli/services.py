"""`proxyd service external register|list|delete`: named upstream URLs routes can target;
the Docker service commands come from proxyd.cli.docker_services."""

from __future__ import annotations

import argparse

from proxyd.cli.docker_services import register_docker
from proxyd.cli.options import call
from proxyd.cli.output import print_json, print_table, report

LIST = """
query { externalServices { serviceName serviceType targetUrl routingEnabled description } }
"""
REGISTER = """
mutation($input: ExternalServiceInput!) {
  registerExternalService(input: $input) { serviceName targetUrl description }
}
"""
DELETE = "mutation($name: String!) { deleteExternalService(name: $name) }"


def _list(args: argparse.Namespace) -> int:
    data = call(args, LIST)
    if args.json:
        print_json(data)
        return 0
    rows = [
        (s["serviceName"], s["targetUrl"], s["routingEnabled"], s["description"])
        for s in data["externalServices"]
    ]
    headers = ("NAME", "URL", "ROUTING", "DESCRIPTION")
    print_table(headers, rows, "no external services")
    return 0


def _register(args: argparse.Namespace) -> int:
    fields = {"serviceName": args.name, "targetUrl": args.url, "description": args.description}
    data = call(args, REGISTER, {"input": {k: v for k, v in fields.items() if v is not None}})
    service = data["registerExternalService"]
    name, url = service["serviceName"], service["targetUrl"]
    report(args, data, f"registered external service {name} -> {url}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    data = call(args, DELETE, {"name": args.name})
    report(args, data, f"deleted external service {args.name}")
    return 0


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    """Add the `service` command group (with its `external` subgroup)."""
    group = sub.add_parser("service", help="services routes can send requests to")
    kinds = group.add_subparsers(dest="service_kind", required=True, metavar="KIND")
    register_docker(kinds, api)
    external = kinds.add_parser("external", help="external services: a name for an upstream URL")
    actions = external.add_subparsers(dest="service_command", required=True, metavar="ACTION")

    reg = actions.add_parser(
        "register", parents=[api], help="register (or replace) an external service"
    )
    reg.add_argument("name", metavar="NAME", help="lower-case name routes refer to")
    reg.add_argument("url", metavar="URL", help="http(s):// URL requests are sent to")
    reg.add_argument("--description", metavar="TEXT")
    reg.set_defaults(func=_register)

    actions.add_parser("list", parents=[api], help="list external services").set_defaults(
        func=_list
    )

    delete = actions.add_parser("delete", parents=[api], help="delete an external service")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(func=_delete)
