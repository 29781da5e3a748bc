"""`proxyd ports`: host ports allocated to services (with owners), or the free ranges."""

from __future__ import annotations

import argparse

from proxyd.cli.options import call
from proxyd.cli.output import print_json, print_table

PORTS = """query { ports { port serviceName portName bindAddress protocol containerPort
  requireToken allocatedAt } }"""
RANGES = "query { availablePortRanges { start end purpose } }"


def _ports(args: argparse.Namespace) -> int:
    if args.available:
        data = call(args, RANGES)
        if args.json:
            print_json(data)
        else:
            rows = [(r["start"], r["end"], r["purpose"]) for r in data["availablePortRanges"]]
            print_table(("FROM", "TO", "PURPOSE"), rows, "no free ports")
        return 0
    data = call(args, PORTS)
    if args.json:
        print_json(data)
        return 0
    rows = [
        (
            p["port"],
            p["bindAddress"],
            p["protocol"],
            p["serviceName"],
            p["portName"],
            p["containerPort"],
            p["requireToken"],
        )
        for p in data["ports"]
    ]
    headers = ("PORT", "BIND", "PROTO", "SERVICE", "NAME", "CONTAINER", "TOKEN")
    print_table(headers, rows, "no ports allocated")
    return 0


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    ports = sub.add_parser("ports", parents=[api], help="host ports allocated to services")
    ports.add_argument("--available", action="store_true", help="show the free port ranges")
    ports.set_defaults(func=_ports)
