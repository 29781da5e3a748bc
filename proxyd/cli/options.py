"""Argument-parsing pieces shared by the API commands: the global --api-url/--token/--json flags,
NAME=VALUE parsing, and `call`, which turns those flags into one GraphQL request.
"""

from __future__ import annotations

import argparse
from typing import Any

from proxyd.cli.client import ApiClient, resolve_api_url, resolve_token


def api_options() -> argparse.ArgumentParser:
    """A parent parser with the flags every API command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("API connection")
    group.add_argument(
        "--api-url",
        metavar="URL",
        help="management API base URL (default: $PROXYD_API_URL, else http://127.0.0.1:API_PORT)",
    )
    group.add_argument("--token", help="bearer token (default: $PROXYD_TOKEN)")
    group.add_argument(
        "--json", action="store_true", help="print the raw GraphQL data as JSON (for scripts)"
    )
    return parent


def key_value(text: str) -> tuple[str, str]:
    """argparse type for NAME=VALUE (the value may be empty; the name may not)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def as_dict(pairs: list[tuple[str, str]] | None) -> dict[str, str] | None:
    """Repeated NAME=VALUE options as a dict (later names win), or None when none were given."""
    return None if pairs is None else dict(pairs)


def call(args: argparse.Namespace, document: str, variables: dict[str, Any] | None = None) -> dict:
    """Send one GraphQL document to the API chosen by the global flags; return its data."""
    client = ApiClient(resolve_api_url(args.api_url), resolve_token(args.token))
    return client.execute(document, variables)
