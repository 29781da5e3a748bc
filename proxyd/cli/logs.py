"""`proxyd logs [filters]`, `proxyd logs follow`, `proxyd logs stats`: request logs over GraphQL.

`follow` subscribes to `requestLogs` over graphql-transport-ws (trio-websocket) and prints each
record as it arrives until Ctrl-C. Status codes are coloured when stdout is a terminal (and
NO_COLOR is not set); `--json` prints raw data for scripts (one JSON object per line for follow).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

from proxyd.cli.client import resolve_api_url, resolve_token
from proxyd.cli.options import call
from proxyd.cli.output import print_fields, print_json, print_table
from proxyd.cli.subscribe import follow_subscription

RECORD_FIELDS = """
    id timestamp clientIp hostname method path query status bytesIn bytesOut durationMs upstreamMs
    user clientId authOutcome userAgent referer error protocol instance
"""
LIST = f"""
query($filter: RequestLogFilter, $limit: Int, $after: String) {{
  requestLogs(filter: $filter, limit: $limit, after: $after) {{
    items {{ {RECORD_FIELDS} }} endCursor hasMore
  }}
}}
"""
FOLLOW = f"""
subscription($filter: RequestLogFilter) {{ requestLogs(filter: $filter) {{ {RECORD_FIELDS} }} }}
"""
STATS = """
query($hostname: String, $hours: Int) {
  requestStats(hostname: $hostname, hours: $hours) {
    hostname hours requests errors uniqueVisitors p50Ms p95Ms p99Ms hourly { hour requests errors }
  }
}
"""
COLOURS = {2: "32", 3: "36", 4: "33", 5: "31"}


def use_colour(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR")


def status_text(status: int, colour: bool) -> str:
    code = COLOURS.get(status // 100)
    return f"\x1b[{code}m{status}\x1b[0m" if colour and code else str(status)


def _filter(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "hostname": getattr(args, "host", None),
        "ip": getattr(args, "ip", None),
        "status": getattr(args, "status", None),
        "errorsOnly": True if getattr(args, "errors", False) else None,
        "path": getattr(args, "path", None),
        "method": getattr(args, "method", None),
        "text": getattr(args, "search", None),
    }
    hours = getattr(args, "hours", None)
    if hours is not None:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
        fields["since"] = since.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {k: v for k, v in fields.items() if v is not None}


def _time(record: dict[str, Any]) -> str:
    return str(record.get("timestamp") or "").replace("T", " ").removesuffix("Z")


def _row(record: dict[str, Any], colour: bool) -> tuple:
    path = record["path"] + (f"?{record['query']}" if record.get("query") else "")
    return (
        _time(record),
        record["clientIp"],
        record["hostname"],
        record["method"],
        path if len(path) <= 60 else path[:59] + "…",
        status_text(record["status"], colour),
        f"{record['durationMs']:.1f}",
        record["bytesOut"],
        record.get("error") or "",
    )


HEADERS = ("TIME (UTC)", "CLIENT", "HOST", "METHOD", "PATH", "STATUS", "MS", "BYTES", "ERROR")


def _list(args: argparse.Namespace) -> int:
    data = call(args, LIST, {"filter": _filter(args), "limit": args.limit, "after": args.after})
    if args.json:
        print_json(data)
        return 0
    page = data["requestLogs"]
    colour = use_colour()
    print_table(HEADERS, [_row(r, colour) for r in page["items"]], "no matching requests")
    if page["hasMore"] and page["endCursor"]:
        print(f"\nmore: proxyd logs ... --after {page['endCursor']}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    data = call(args, STATS, {"hostname": args.host, "hours": args.hours or 24})
    if args.json:
        print_json(data)
        return 0
    stats = dict(data["requestStats"])
    hourly = stats.pop("hourly")
    stats["hostname"] = stats["hostname"] or "(all proxies)"
    print_fields(stats)
    rows = [(h["hour"], h["requests"], h["errors"]) for h in hourly if h["requests"]]
    if rows:
        print()
        print_table(("HOUR (UTC)", "REQUESTS", "ERRORS"), rows, "")
    return 0


def _follow(args: argparse.Namespace) -> int:
    import trio

    api_url = resolve_api_url(args.api_url)
    token = resolve_token(args.token)
    try:
        trio.run(follow, api_url, token, _filter(args), args.json)
    except KeyboardInterrupt:
        return 0
    return 0


async def follow(api_url: str, token: str, criteria: dict[str, Any], as_json: bool) -> None:
    """Print request records from the live subscription until the connection ends."""
    colour = use_colour()

    def show(data: dict[str, Any]) -> None:
        record = data["requestLogs"]
        if as_json:
            print(json.dumps(record), flush=True)
        else:
            print("  ".join(str(c) for c in _row(record, colour)).rstrip(), flush=True)

    if not as_json:
        print("  ".join(HEADERS), flush=True)
    await follow_subscription(
        api_url, token, FOLLOW, {"filter": criteria}, show, "the live log stream"
    )


def _status(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 100 <= value <= 599:
        raise argparse.ArgumentTypeError(f"expected an HTTP status from 100 to 599, got {text!r}")
    return value


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of hours, got {text!r}")
    return value


def _filters(parser: argparse.ArgumentParser, full: bool) -> None:
    parser.add_argument("--host", metavar="H", help="only this proxy hostname")
    parser.add_argument("--ip", metavar="IP", help="only this client IP")
    parser.add_argument("--status", type=_status, metavar="N", help="only this HTTP status")
    parser.add_argument("--errors", action="store_true", help="only errors (status >= 400)")
    parser.add_argument("--path", metavar="PATH", help="only this exact path")
    parser.add_argument("--method", metavar="M", help="only this method (GET, POST, ...)")
    parser.add_argument("--search", metavar="TEXT", help="free-text search")
    if full:
        parser.add_argument("--hours", type=_hours, metavar="N", help="only the last N hours")


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    """Add the `logs` command group to the top-level subcommands."""
    group = sub.add_parser(
        "logs", parents=[api], help="request logs: search, follow live, statistics"
    )
    _filters(group, full=True)
    group.add_argument("--limit", type=int, default=50, help="records per page (default 50)")
    group.add_argument("--after", metavar="CURSOR", help="continue after this cursor")
    group.set_defaults(func=_list)
    actions = group.add_subparsers(dest="logs_command", required=False, metavar="ACTION")

    follow_cmd = actions.add_parser("follow", parents=[api], help="print new requests live")
    _filters(follow_cmd, full=False)
    follow_cmd.set_defaults(func=_follow)

    stats = actions.add_parser("stats", parents=[api], help="requests, errors, visitors, p50/95/99")
    stats.add_argument("--host", metavar="H", help="one proxy hostname (default: all)")
    stats.add_argument(
        "--hours", type=int, default=24, metavar="N", help="last N hours (default 24)"
    )
    stats.set_defaults(func=_stats)
