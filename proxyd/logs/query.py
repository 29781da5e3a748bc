"""Searching request records and following them live.

`search` picks the one index that matches a filter field (ip, host, user, client, status, errors,
slow, method+path; otherwise idx:req:all), walks it newest first between the time bounds, loads
the records with MGET and applies the remaining criteria in Python. Pages are cut by `limit`; the
cursor names the last index entry examined, so the next page continues exactly there, even when a
scan stopped early at SCAN_BUDGET entries without filling the page.

`tail` follows stream:requests with blocking XREAD from the entry that was last when it started:
every process writes to that one stream, so subscribers see the records of all processes sharing
the Redis, in stream order.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import coredis

from proxyd.logs import layout

MAX_LIMIT = 1000
PAGE = 500
SCAN_BUDGET = 20_000
EPSILON = 1e-6


class QueryError(ValueError):
    """A filter, limit or cursor the caller must fix (BAD_USER_INPUT)."""


@attrs.define
class LogFilter:
    ip: str | None = None
    hostname: str | None = None
    user: str | None = None
    client_id: str | None = None
    status: int | None = None
    errors_only: bool = False
    slow_only: bool = False
    path: str | None = None
    method: str | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> LogFilter:
        """Validate GraphQL filter input (snake_case keys) into a LogFilter, or raise QueryError."""
        raw = {k: v for k, v in (raw or {}).items() if v is not None and v != ""}
        out = cls(
            ip=raw.get("ip"),
            hostname=raw.get("hostname", "").strip().lower() or None,
            user=raw.get("user"),
            client_id=raw.get("client_id"),
            status=raw.get("status"),
            errors_only=bool(raw.get("errors_only")),
            slow_only=bool(raw.get("slow_only")),
            path=raw.get("path"),
            method=raw.get("method", "").strip().upper() or None,
            text=raw.get("text", "").strip().lower() or None,
            # Bounds are inclusive; a microsecond of slack absorbs float rounding.
            since=parse_time(raw["since"], "since") - EPSILON if "since" in raw else None,
            until=parse_time(raw["until"], "until") + EPSILON if "until" in raw else None,
        )
        if out.ip is not None:
            try:
                ipaddress.ip_address(out.ip)
            except ValueError:
                raise QueryError(f"filter.ip must be an IP address, not {out.ip!r}.") from None
        if out.status is not None and not 100 <= out.status <= 599:
            raise QueryError(
                f"filter.status must be an HTTP status from 100 to 599, not {out.status}."
            )
        if out.path is not None and not out.path.startswith("/"):
            raise QueryError(f"filter.path must start with '/', not {out.path!r}.")
        if out.since is not None and out.until is not None and out.since > out.until:
            raise QueryError("filter.since must not be later than filter.until.")
        return out

    def index(self, slow_ms: float) -> str:
        """The most specific index for this filter."""
        if self.ip:
            return layout.idx_ip(self.ip)
        if self.user:
            return layout.idx_user(self.user)
        if self.client_id:
            return layout.idx_client(self.client_id)
        if self.method and self.path:
            return layout.idx_path(self.method, self.path)
        if self.status is not None:
            return layout.idx_status(self.status)
        if self.hostname:
            return layout.idx_host(self.hostname)
        if self.slow_only:
            return layout.IDX_SLOW
        if self.errors_only:
            return layout.IDX_ERRORS
        return layout.IDX_ALL

    def matches(self, record: dict[str, Any], slow_ms: float) -> bool:
        """Whether a stored record meets every criterion."""
        ts = record.get("ts", 0)
        status = record.get("status", 0)
        checks = (
            self.ip is None or record.get("client_ip") == self.ip,
            self.hostname is None or record.get("hostname") == self.hostname,
            self.user is None or record.get("user") == self.user,
            self.client_id is None or record.get("client_id") == self.client_id,
            self.status is None or status == self.status,
            not self.errors_only or status >= 400 or bool(record.get("error")),
            not self.slow_only or record.get("duration_ms", 0) >= slow_ms,
            self.path is None or record.get("path") == self.path,
            self.method is None or record.get("method") == self.method,
            self.since is None or ts >= self.since,
            self.until is None or ts <= self.until,
        )
        if not all(checks):
            return False
        if self.text:
            haystack = " ".join(
                str(record.get(k) or "")
                for k in (
                    "path",
                    "query",
                    "hostname",
                    "client_ip",
                    "user_agent",
                    "referer",
                    "error",
                    "user",
                    "client_id",
                    "method",
                )
            ).lower()
            return self.text in haystack
        return True


def parse_time(value: Any, name: str) -> float:
    """ISO 8601 (Z or offset; naive means UTC) or epoch seconds -> epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return when.timestamp()
    raise QueryError(
        f"filter.{name} must be an ISO 8601 time (2025-01-31T12:00:00Z) or epoch seconds, "
        f"not {value!r}."
    )


def encode_cursor(score: float, member: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([score, member]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, member = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return float(score), str(member)
    except (ValueError, TypeError):
        raise QueryError("'after' is not a cursor returned by requestLogs.") from None


@attrs.define
class Page:
    items: list[dict[str, Any]]
    end_cursor: str | None
    has_more: bool


async def search(
    redis: coredis.Redis,
    criteria: LogFilter,
    *,
    limit: int = 50,
    after: str | None = None,
    slow_ms: float = 1000.0,
) -> Page:
    """Records matching criteria, newest first, at most limit, continuing after the cursor."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be from 1 to {MAX_LIMIT}, not {limit}.")
    index = criteria.index(slow_ms)
    high: float | str = "+inf" if criteria.until is None else criteria.until
    low: float | str = "-inf" if criteria.since is None else criteria.since
    skip_member: str | None = None
    if after:
        score, skip_member = decode_cursor(after)
        high = score
    items: list[dict[str, Any]] = []
    scanned = 0
    last: tuple[float, str] | None = None
    while scanned < SCAN_BUDGET:
        entries = await redis.zrevrangebyscore(
            index, high, low, withscores=True, offset=0, count=PAGE + 1
        )
        pairs = [(str(e[0]), float(e[1])) for e in entries]
        if skip_member is not None:
            # Same-score members come in reverse lexicographic order: skip up to the cursor.
            pairs = [(m, s) for m, s in pairs if not (s == high and m >= skip_member)]
        if not pairs:
            return Page(items, None, False)
        values = await redis.mget([m for m, _ in pairs])
        for (member, score), raw in zip(pairs, values, strict=True):
            scanned += 1
            last = (score, member)
            if raw is None:
                continue  # expired before the index was trimmed
            record = json.loads(raw)
            if criteria.matches(record, slow_ms):
                items.append(record)
                if len(items) == limit:
                    return Page(items, encode_cursor(score, member), True)
        # Continue below the last member examined (same score: skip what we have seen).
        high, skip_member = last
        if len(entries) <= PAGE:
            return Page(items, None, False)
    assert last is not None
    return Page(items, encode_cursor(*last), True)


async def last_stream_id(redis: coredis.Redis) -> str:
    """The id of the newest stream entry, or 0-0 when the stream is empty."""
    entries = await redis.xrevrange(layout.STREAM, count=1)
    return entries[0].identifier if entries else "0-0"


async def tail(
    redis: coredis.Redis, criteria: LogFilter, slow_ms: float = 1000.0, block_ms: int = 5000
) -> AsyncIterator[dict[str, Any]]:
    """Records appended to stream:requests from now on that match criteria, in stream order."""
    cursor = await last_stream_id(redis)
    while True:
        response = await redis.xread({layout.STREAM: cursor}, count=500, block=block_ms)
        for entry in (response or {}).get(layout.STREAM, ()):
            cursor = entry.identifier
            raw = entry.field_values.get("r")
            if not raw:
                continue
            record = json.loads(raw)
            if criteria.matches(record, slow_ms):
                yield record
