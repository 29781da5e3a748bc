"""Printing results: aligned plain-text tables, `key: value` detail lines, and raw JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def cell(value: Any) -> str:
    """A value as table or detail text: yes/no, comma lists, compact JSON, '-' for nothing."""
    if value is None or value in ("", [], {}):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> None:
    """Columns padded to their widest cell; prints `empty` instead when there are no rows."""
    text_rows = [[cell(v) for v in row] for row in rows]
    if not text_rows:
        print(empty)
        return
    widths = [max(len(r[i]) for r in [list(headers), *text_rows]) for i in range(len(headers))]
    for row in [list(headers), *text_rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def report(args: Any, data: Any, message: str) -> None:
    """The raw GraphQL data with --json, otherwise one human sentence."""
    if args.json:
        print_json(data)
    else:
        print(message)


def print_fields(record: Mapping[str, Any]) -> None:
    """One `key: value` line per field, keys aligned."""
    width = max((len(k) for k in record), default=0) + 1
    for key, value in record.items():
        print(f"{(key + ':').ljust(width)} {cell(value)}")
