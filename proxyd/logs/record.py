"""The request record: one per proxied request, built on the hot path from plain values and
shipped as a plain row (proxyd.logs.wire). The log-writer process masks a row's secrets
(`stored_row`) before it is stored; readers turn stored rows back into dicts (`from_stored`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from proxyd.logs import layout
from proxyd.logs.masking import mask_query, mask_url

USER_AGENT_LIMIT = 512
REFERER_LIMIT = 1024
_QUERY = layout.STORED_FIELDS.index("query")
_USER_AGENT = layout.STORED_FIELDS.index("user_agent")
_REFERER = layout.STORED_FIELDS.index("referer")


@attrs.define(slots=True)
class RequestRecord:
    """What the hot path knows about a finished request (raw values; masked when stored)."""

    ts: float  # wall-clock start, epoch seconds
    client_ip: str
    hostname: str
    method: str
    path: str
    query: str
    status: int
    bytes_in: int
    bytes_out: int
    duration_ms: float
    upstream_ms: float | None
    user_agent: str
    referer: str
    protocol: str = "http"
    user: str = ""
    client_id: str = ""
    auth_outcome: str = ""
    error: str = ""


def stored_row(row: tuple, instance: str) -> tuple:
    """A checked wire row as it is stored: secrets in the query and referer masked, the user
    agent and referer cut to their limits, the serving process's instance appended."""
    query, agent, referer = row[_QUERY], row[_USER_AGENT], row[_REFERER]
    if query or referer or len(agent) > USER_AGENT_LIMIT:
        row = list(row)
        row[_QUERY] = mask_query(query)
        row[_USER_AGENT] = agent[:USER_AGENT_LIMIT]
        row[_REFERER] = mask_url(referer[:REFERER_LIMIT])
        row = tuple(row)
    return (*row, instance)


def from_stored(fields: list[str], row: list[Any], record_id: str) -> dict[str, Any]:
    """A stored row as the record dict queries return: `id` first, `ts` in epoch seconds (as
    searches order and resume by it), durations in milliseconds."""
    record: dict[str, Any] = {"id": record_id}
    record.update(zip(fields, row, strict=False))
    record["ts"] = int(record.pop("ts_us", 0) or 0) / 1_000_000
    record["duration_ms"] = int(record.pop("duration_us", 0) or 0) / 1000
    upstream = record.pop("upstream_us", None)
    record["upstream_ms"] = None if upstream is None else int(upstream) / 1000
    return record


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with microseconds (usable as an exact filter bound)."""
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def to_graphql(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored record as the GraphQL RequestLog type (snake_case; ariadne converts names)."""
    out = dict(stored)
    out["timestamp"] = iso(float(stored.get("ts", 0)))
    return out
