"""`proxyd mcp config [--client claude|vscode|mcp-remote]`: print a configuration snippet that
connects an MCP client to this instance's /mcp endpoint."""

from __future__ import annotations

import argparse

from proxyd.cli.errors import CliError
from proxyd.config import load_settings
from proxyd.mcp.config import CLIENTS, check_url, mcp_url, snippet


def _config(args: argparse.Namespace) -> int:
    url = args.url or mcp_url(load_settings().issuer)
    try:
        print(snippet(args.client, check_url(url), args.name))
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    return 0


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    mcp = sub.add_parser("mcp", help="proxyd's own MCP endpoint (/mcp)").add_subparsers(
        dest="mcp_command", required=True, metavar="ACTION"
    )
    config = mcp.add_parser(
        "config", help="print a ready MCP client configuration for this instance's /mcp URL"
    )
    config.add_argument("--client", choices=CLIENTS, default="claude", help="default: claude")
    config.add_argument("--url", help="the /mcp URL (default: OAUTH_ISSUER + /mcp)")
    config.add_argument("--name", default="proxyd", help="the server's name in the client")
    config.set_defaults(func=_config)
