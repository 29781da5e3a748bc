"""The request record: one per proxied request, built on the hot path from plain values and
serialised (masked, JSON) by the log-writer process (proxyd.logs.sink), never on the request path.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from typing import Any

import attrs

from proxyd.logs.masking import mask_query, mask_url

# A per-process tag keeps record ids unique across processes writing the same millisecond.
_PROCESS_TAG = os.urandom(3).hex()
_sequence = itertools.count()


@attrs.define(slots=True)
class RequestRecord:
    """What the hot path knows about a finished request (raw values; masked when serialised)."""

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
    instance: str = ""
    seq: int = attrs.field(factory=lambda: next(_sequence))

    @property
    def key(self) -> str:
        """req:{ts_ms}:{ip}:{unique}, the reference layout plus a suffix against collisions."""
        return f"req:{int(self.ts * 1000)}:{self.client_ip}:{_PROCESS_TAG}{self.seq:x}"

    @property
    def is_error(self) -> bool:
        return self.status >= 400 or bool(self.error)

    def to_dict(self) -> dict[str, Any]:
        """The stored form: secrets masked, bodies never included."""
        return {
            "id": self.key,
            "ts": round(self.ts, 6),
            "client_ip": self.client_ip,
            "hostname": self.hostname,
            "method": self.method,
            "path": self.path,
            "query": mask_query(self.query),
            "status": self.status,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "duration_ms": round(self.duration_ms, 3),
            "upstream_ms": None if self.upstream_ms is None else round(self.upstream_ms, 3),
            "user": self.user,
            "client_id": self.client_id,
            "auth_outcome": self.auth_outcome,
            "user_agent": self.user_agent[:512],
            "referer": mask_url(self.referer[:1024]),
            "error": self.error,
            "protocol": self.protocol,
            "instance": self.instance,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


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
