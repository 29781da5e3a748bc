"""`proxyd service create|list|show|start|stop|restart|delete|logs [-f]|stats|proxy` and
`proxyd service port add|remove|list|check`: Docker services through the GraphQL API.

Tables by default, `--json` for scripts; `logs -f` follows the serviceLogs subscription live.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from proxyd.cli.client import resolve_api_url, resolve_token
from proxyd.cli.errors import CliError
from proxyd.cli.options import as_dict, call, key_value
from proxyd.cli.output import print_fields, print_json, print_table, report
from proxyd.cli.subscribe import follow_subscription

SERVICE_FIELDS = """
name type status exitCode health image command environmentKeys memoryLimit cpuLimit
restartPolicy labels networks containerName containerId ipAddress targetUrl proxyHostname
createdBy createdAt notice
ports { name containerPort hostPort bindAddress protocol requireToken publishedBy }
"""
LIST = """query($type: String) {
  services(type: $type) { name type status image targetUrl ports { hostPort } }
}"""
SHOW = "query($name: String!) { service(name: $name) { " + SERVICE_FIELDS + " } }"
CREATE = (
    "mutation($input: CreateServiceInput!) { createService(input: $input) { "
    + SERVICE_FIELDS
    + " } }"
)
LIFECYCLE = "mutation($name: String!) { %s(name: $name) { name status exitCode } }"
DELETE = """mutation($name: String!, $deleteProxy: Boolean) {
  deleteService(name: $name, deleteProxy: $deleteProxy)
}"""
LOGS = "query($name: String!, $tail: Int) { serviceLogs(name: $name, tail: $tail) }"
FOLLOW = "subscription($name: String!, $tail: Int) { serviceLogs(name: $name, tail: $tail) }"
STATS = """query($name: String!) { serviceStats(name: $name) {
  name cpuPercent memoryUsage memoryLimit memoryPercent networkRx networkTx blockRead blockWrite pids
} }"""
PROXY = """mutation($name: String!, $hostname: String) {
  createServiceProxy(name: $name, hostname: $hostname) { hostname targetUrl }
}"""
PORT_ADD = """mutation($name: String!, $input: ServicePortInput!) {
  addServicePort(name: $name, input: $input) { notice ports { name hostPort } }
}"""
PORT_REMOVE = """mutation($name: String!, $port: String!) {
  removeServicePort(name: $name, portName: $port) { notice }
}"""
PORT_LIST = """query($name: String!) { service(name: $name) {
  ports { name containerPort hostPort bindAddress protocol requireToken publishedBy }
} }"""
CLEANUP = "mutation { cleanupServices }"
PORT_CHECK = """query($port: Int!, $bind: String) {
  checkPort(port: $port, bindAddress: $bind) { port bindAddress available reason }
}"""


def _list(args: argparse.Namespace) -> int:
    data = call(args, LIST, {"type": args.type})
    if args.json:
        print_json(data)
        return 0
    rows = [
        (
            s["name"],
            s["type"],
            s["status"],
            s["image"],
            s["targetUrl"],
            [p["hostPort"] for p in s["ports"]],
        )
        for s in data["services"]
    ]
    print_table(("NAME", "TYPE", "STATUS", "IMAGE", "TARGET", "HOST PORTS"), rows, "no services")
    return 0


def _show(args: argparse.Namespace) -> int:
    data = call(args, SHOW, {"name": args.name})
    if data["service"] is None:
        raise CliError(f"no service named {args.name}.")
    if args.json:
        print_json(data)
        return 0
    service = dict(data["service"])
    ports = service.pop("ports")
    print_fields(service)
    if ports:
        print()
        _port_table(ports)
    return 0


def _port_table(ports: list[dict]) -> None:
    rows = [
        (
            p["name"],
            p["containerPort"],
            p["hostPort"],
            p["bindAddress"],
            p["protocol"],
            p["requireToken"],
            p["publishedBy"],
        )
        for p in ports
    ]
    headers = ("PORT", "CONTAINER", "HOST", "BIND", "PROTO", "TOKEN", "PUBLISHED BY")
    print_table(headers, rows, "no ports")


def _port_spec(text: str) -> dict[str, Any]:
    """CONTAINER[:HOST][/udp][@BIND] -> a ServicePortInput."""
    spec: dict[str, Any] = {}
    if "@" in text:
        text, spec["bindAddress"] = text.split("@", 1)
    if "/" in text:
        text, spec["protocol"] = text.split("/", 1)
    container, _, host = text.partition(":")
    try:
        spec["containerPort"] = int(container)
        if host:
            spec["hostPort"] = int(host)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected CONTAINER[:HOST][/udp][@BIND], got {text!r}"
        ) from None
    return spec


def _create(args: argparse.Namespace) -> int:
    ports = list(args.port or [])
    if args.port_token:
        if not ports:
            raise CliError("--port-token needs a --port.")
        ports[0] = {**ports[0], "token": args.port_token}
    fields = {
        "name": args.name,
        "image": args.image,
        "dockerfilePath": args.dockerfile,
        "command": [args.command] if args.command else None,
        "environment": as_dict(args.env),
        "labels": as_dict(args.label),
        "memoryLimit": args.memory,
        "cpuLimit": args.cpu,
        "restartPolicy": args.restart,
        "networks": args.network,
        "ports": ports or None,
        "autoProxy": args.auto_proxy or None,
        "hostname": args.hostname,
    }
    data = call(args, CREATE, {"input": {k: v for k, v in fields.items() if v is not None}})
    service = data["createService"]
    ports_text = ", ".join(
        f"{p['hostPort']}->{p['containerPort']}/{p['protocol']}" for p in service["ports"]
    )
    message = f"created service {service['name']} ({service['status']})"
    if ports_text:
        message += f", ports {ports_text}"
    if service["proxyHostname"]:
        message += f", proxy {service['proxyHostname']}"
    report(args, data, message)
    return 0


def _lifecycle(field: str, verb: str):
    def run(args: argparse.Namespace) -> int:
        data = call(args, LIFECYCLE.replace("%s", field), {"name": args.name})
        service = data[field]
        report(args, data, f"{verb} service {service['name']}: {service['status']}")
        return 0

    return run


def _delete(args: argparse.Namespace) -> int:
    data = call(args, DELETE, {"name": args.name, "deleteProxy": args.delete_proxy})
    extra = " and its proxy" if args.delete_proxy else ""
    report(args, data, f"deleted service {args.name}{extra}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    if args.follow:
        import trio

        try:
            trio.run(_follow, args)
        except KeyboardInterrupt:
            return 0
        return 0
    data = call(args, LOGS, {"name": args.name, "tail": args.tail})
    if args.json:
        print_json(data)
    else:
        for line in data["serviceLogs"]:
            print(line)
    return 0


async def _follow(args: argparse.Namespace) -> None:
    def show(data: dict[str, Any]) -> None:
        line = data["serviceLogs"]
        print(json.dumps(line) if args.json else line, flush=True)

    await follow_subscription(
        resolve_api_url(args.api_url),
        resolve_token(args.token),
        FOLLOW,
        {"name": args.name, "tail": args.tail},
        show,
        "the live log stream",
    )


def _stats(args: argparse.Namespace) -> int:
    data = call(args, STATS, {"name": args.name})
    if args.json:
        print_json(data)
        return 0
    s = data["serviceStats"]
    mib = 1024 * 1024
    print_fields(
        {
            "service": s["name"],
            "cpu": f"{s['cpuPercent']:.2f}%",
            "memory": f"{s['memoryUsage'] / mib:.1f} MiB of {s['memoryLimit'] / mib:.1f} MiB "
            f"({s['memoryPercent']:.1f}%)",
            "network": f"rx {int(s['networkRx'])} B, tx {int(s['networkTx'])} B",
            "block i/o": f"read {int(s['blockRead'])} B, write {int(s['blockWrite'])} B",
            "pids": s["pids"],
        }
    )
    return 0


def _proxy(args: argparse.Namespace) -> int:
    data = call(args, PROXY, {"name": args.name, "hostname": args.hostname})
    proxy = data["createServiceProxy"]
    report(args, data, f"created proxy {proxy['hostname']} -> service {args.name}")
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    data = call(args, CLEANUP)
    removed = data["cleanupServices"]
    report(args, data, f"removed {', '.join(removed)}" if removed else "no orphaned containers")
    return 0


def _port_add(args: argparse.Namespace) -> int:
    spec = dict(args.spec)
    if args.port_name:
        spec["name"] = args.port_name
    if args.port_token:
        spec["token"] = args.port_token
    data = call(args, PORT_ADD, {"name": args.name, "input": spec})
    report(args, data, data["addServicePort"]["notice"] or "port added")
    return 0


def _port_remove(args: argparse.Namespace) -> int:
    data = call(args, PORT_REMOVE, {"name": args.name, "port": args.port_name})
    report(args, data, data["removeServicePort"]["notice"] or "port removed")
    return 0


def _port_list(args: argparse.Namespace) -> int:
    data = call(args, PORT_LIST, {"name": args.name})
    if data["service"] is None:
        raise CliError(f"no service named {args.name}.")
    if args.json:
        print_json(data)
    else:
        _port_table(data["service"]["ports"])
    return 0


def _port_check(args: argparse.Namespace) -> int:
    data = call(args, PORT_CHECK, {"port": args.port, "bind": args.bind})
    check = data["checkPort"]
    if args.json:
        print_json(data)
    elif check["available"]:
        print(f"port {check['port']} is free on {check['bindAddress']}")
    else:
        print(f"port {check['port']} is not available on {check['bindAddress']}: {check['reason']}")
    return 0 if check["available"] else 3


def register_docker(kinds: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    """Add the Docker service commands next to `service external`."""
    create = kinds.add_parser("create", parents=[api], help="create and start a Docker service")
    create.add_argument("name", metavar="NAME")
    create.add_argument("image", metavar="IMAGE", nargs="?", help="image on the Docker host")
    create.add_argument("--dockerfile", metavar="PATH", help="build from this Dockerfile instead")
    create.add_argument(
        "--command", metavar="'CMD ARG...'", help="command line, split like a shell would"
    )
    create.add_argument("--env", action="append", type=key_value, metavar="NAME=VALUE")
    create.add_argument("--label", action="append", type=key_value, metavar="NAME=VALUE")
    create.add_argument("--memory", metavar="SIZE", help="memory limit: 64m, 1g")
    create.add_argument("--cpu", type=float, metavar="CPUS", help="CPU limit, e.g. 0.5")
    create.add_argument("--restart", metavar="POLICY", help="no|always|unless-stopped|on-failure")
    create.add_argument("--network", action="append", metavar="NAME")
    create.add_argument(
        "--port",
        action="append",
        type=_port_spec,
        metavar="CONTAINER[:HOST][/udp][@BIND]",
        help="a port (host port allocated when omitted; bind 127.0.0.1 unless @0.0.0.0)",
    )
    create.add_argument("--port-token", metavar="TOKEN", help="access token for the first port")
    create.add_argument("--auto-proxy", action="store_true", help="make NAME.BASE_DOMAIN proxy")
    create.add_argument("--hostname", help="hostname of the proxy (implies --auto-proxy)")
    create.set_defaults(func=_create)

    listing = kinds.add_parser("list", parents=[api], help="list services of every type")
    listing.add_argument("--type", choices=("docker", "external", "internal"))
    listing.set_defaults(func=_list)

    for command, helptext, func in (
        ("show", "one service in detail", _show),
        ("start", "start a Docker service", _lifecycle("startService", "started")),
        ("stop", "stop a Docker service", _lifecycle("stopService", "stopped")),
        ("restart", "restart a Docker service", _lifecycle("restartService", "restarted")),
        ("stats", "CPU, memory, network and block I/O", _stats),
    ):
        parser = kinds.add_parser(command, parents=[api], help=helptext)
        parser.add_argument("name", metavar="NAME")
        parser.set_defaults(func=func)

    delete = kinds.add_parser("delete", parents=[api], help="delete a Docker service")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--delete-proxy", action="store_true", help="also delete its proxy")
    delete.set_defaults(func=_delete)

    logs = kinds.add_parser("logs", parents=[api], help="container log (-f: follow live)")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("--tail", type=int, default=100, help="last N lines (default 100)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.set_defaults(func=_logs)

    proxy = kinds.add_parser("proxy", parents=[api], help="make a proxy for a Docker service")
    proxy.add_argument("name", metavar="NAME")
    proxy.add_argument("hostname", nargs="?", help="default: NAME.BASE_DOMAIN")
    proxy.set_defaults(func=_proxy)

    cleanup = kinds.add_parser(
        "cleanup", parents=[api], help="remove proxyd-labelled containers without a service"
    )
    cleanup.set_defaults(func=_cleanup)

    port = kinds.add_parser("port", help="ports of a Docker service")
    actions = port.add_subparsers(dest="port_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[api], help="add a port (the container restarts)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("spec", type=_port_spec, metavar="CONTAINER[:HOST][/udp][@BIND]")
    add.add_argument("--port-name", metavar="PORT_NAME")
    add.add_argument("--port-token", metavar="TOKEN", help="require this access token")
    add.set_defaults(func=_port_add)
    remove = actions.add_parser("remove", parents=[api], help="remove a port (restarts)")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("port_name", metavar="PORT_NAME")
    remove.set_defaults(func=_port_remove)
    plist = actions.add_parser("list", parents=[api], help="ports of one service")
    plist.add_argument("name", metavar="NAME")
    plist.set_defaults(func=_port_list)
    check = actions.add_parser("check", parents=[api], help="is a host port free? (exit 3: no)")
    check.add_argument("port", type=int, metavar="PORT")
    check.add_argument("bind", nargs="?", default="127.0.0.1", metavar="BIND_ADDRESS")
    check.set_defaults(func=_port_check)
