"""The `proxyd` command line: argument parsing and dispatch to the command modules."""

from __future__ import annotations

import argparse
import sys

from proxyd.cli import certs, logs, mcp, oauth, ports, proxies, routes, services
from proxyd.cli.errors import CliError
from proxyd.cli.options import api_options
from proxyd.config import SettingsError, load_settings


def _serve(args: argparse.Namespace) -> int:
    from proxyd.cli.serve import serve

    return serve()


def _token_issue(args: argparse.Namespace) -> int:
    import trio

    from proxyd.oauth.issue import IssueError, issue_token
    from proxyd.oauth.tokens import parse_ttl

    settings = load_settings()
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(f"proxyd: {exc}", file=sys.stderr)
        return 2
    scopes = [s for part in args.scope for s in part.replace(",", " ").split()]
    try:
        token = trio.run(issue_token, settings, scopes, args.subject, ttl, args.audience)
    except IssueError as exc:
        print(f"proxyd: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proxyd",
        description="Run the proxyd reverse proxy, and manage it through its GraphQL API.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run proxyd (listeners, API, embedded Redis)")
    serve.set_defaults(func=_serve)

    token = sub.add_parser("token", help="management tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    issue = token.add_parser("issue", help="mint a token from the local signing key; prints it")
    issue.add_argument(
        "--scope",
        action="append",
        required=True,
        help="admin, user or mcp (repeat or comma-separate for several)",
    )
    issue.add_argument("--subject", default="admin", help="who the token names (default: admin)")
    issue.add_argument("--ttl", default="1h", help="lifetime: seconds or 15m, 1h, 7d (default 1h)")
    issue.add_argument(
        "--audience",
        action="append",
        metavar="URL",
        help="resource URL of a protected proxy or of proxyd's /mcp endpoint the token is for "
        "(repeatable); default: the management API",
    )
    issue.set_defaults(func=_token_issue)

    api = api_options()
    for group in (proxies, routes, services, ports, logs, certs, oauth, mcp):
        group.register(sub, api)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"proxyd: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        for line in exc.message.splitlines():
            print(f"proxyd: {line}", file=sys.stderr)
        return exc.exit_code
