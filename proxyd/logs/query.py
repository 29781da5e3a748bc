"""Searching request records and following them live (records are stored in batches:
proxyd.logs.layout).

`search` picks the one index that matches a filter field (ip, host, user, client, status, errors,
slow, method+path; otherwise idx:req:all) and walks its batches newest first, loading them with
MGET and applying every criterion to their records in Python. Records come out newest first, in
exact (time, id) order: a batch's score is its newest record's time, and its oldest is less than
BATCH_SPREAD older, so once the walk has passed score S, every record newer than S that can match
has been loaded. Pages are cut by `limit`; the cursor names the last record returned (or the time
the walk reached, when it stopped at SCAN_BUDGET records without filling the page), so the next
page continues exactly there.

`tail` follows stream:requests with blocking XREAD from the entry that was last when it started:
every process writes to that one stream (one entry per batch), so subscribers see the records of
all processes sharing the Redis, in the order they were written.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import attrs
import coredis

from proxyd.logs import layout
from proxyd.logs.record import from_stored

MAX_LIMIT = 1000
# Batches loaded by a search's first read, doubling with each further read up to MAX_READ.
FIRST_READ = 2
MAX_READ = 16
SCAN_BUDGET = 50_000  # records examined per page at most
EPSILON = 1e-6
# Sorts after every record id at the same time: a cursor at a time, not at a record.
AFTER_EVERY_ID = "\U0010ffff"


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
    """ISO 8601 (Z or offset; naive means UTC) or epoch seconds -> epoch seconds (finite)."""
    seconds = _seconds(value)
    if seconds is None or not math.isfinite(seconds):
        raise QueryError(
            f"filter.{name} must be an ISO 8601 time (2025-01-31T12:00:00Z) or epoch seconds, "
            f"not {value!r}."
        )
    return seconds


def _seconds(value: Any) -> float | None:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, str):
            return None
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        when = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def encode_cursor(ts: float, record_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts, record_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, record_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if (
            isinstance(ts, bool)
            or not isinstance(ts, int | float)
            or not isinstance(record_id, str)
        ):
            raise TypeError
        if not math.isfinite(ts):
            raise ValueError
        return float(ts), record_id
    except (ValueError, TypeError, OverflowError):
        raise QueryError("'after' is not a cursor returned by requestLogs.") from None


@attrs.define
class Page:
    items: list[dict[str, Any]]
    end_cursor: str | None
    has_more: bool


def decode_batch(key: str, raw: str | bytes | None) -> list[dict[str, Any]]:
    """The records of one stored batch, in the order they were written ([] when it is gone or
    not a batch this version reads)."""
    if not raw:
        return []
    try:
        batch = json.loads(raw)
        if "fields" not in batch and batch.get("id") == key:
            return [batch]  # one record, as proxyd stored them before batches (read until expiry)
        fields, rows = batch["fields"], batch["rows"]
        if batch.get("v") != layout.BATCH_VERSION or not isinstance(rows, list):
            return []
        return [
            from_stored(fields, row, layout.record_id(key, position))
            for position, row in enumerate(rows)
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


async def search(
    redis: coredis.Redis,
    criteria: LogFilter,
    *,
    limit: int = 50,
    after: str | None = None,
    slow_ms: float = 1000.0,
    scan_budget: int = SCAN_BUDGET,
) -> Page:
    """Records matching criteria, newest first, at most limit, continuing after the cursor
    (a page may hold fewer, with a cursor, once scan_budget records were examined)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be from 1 to {MAX_LIMIT}, not {limit}.")
    index = criteria.index(slow_ms)
    newest = criteria.until
    below: tuple[float, str] | None = None  # only records strictly before this (ts, id)
    if after:
        below = decode_cursor(after)
        newest = below[0] if newest is None else min(newest, below[0])
    start = float("inf") if newest is None else newest
    # A batch scored above newest + BATCH_SPREAD holds no record at or before newest.
    high: float | str = "+inf" if newest is None else newest + layout.BATCH_SPREAD
    low: float | str = "-inf" if criteria.since is None else criteria.since
    read_at_high = 0  # batches already read whose score is exactly `high`
    items: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []  # loaded and matching, not yet known to be next
    examined = 0
    per_read = FIRST_READ
    while True:
        # ZRANGE key high low BYSCORE REV: coredis names its two bounds min_ and max_.
        entries = await redis.zrange(
            index,
            _score(high),
            _score(low),
            sortby=coredis.PureToken.BYSCORE,
            rev=True,
            offset=read_at_high,
            count=per_read + 1,
            withscores=True,
        )
        reading = [(str(e[0]), float(e[1])) for e in entries[:per_read]]
        done = len(entries) <= per_read  # nothing lies beyond what this read loads
        per_read = min(per_read * 2, MAX_READ)
        if reading:
            values = await redis.mget([m for m, _ in reading])
            for (member, _), raw in zip(reading, values, strict=True):
                for record in decode_batch(member, raw):
                    examined += 1
                    if below is not None and (record["ts"], record["id"]) >= below:
                        continue
                    if criteria.matches(record, slow_ms):
                        held.append(record)
            last = reading[-1][1]
            same = sum(1 for _, score in reading if score == last)
            # Same-score members come in a fixed order: skip those read by offset.
            read_at_high = read_at_high + same if last == high else same
            high = last
        # Every batch not yet loaded scores at most `high`: records newer than that are final.
        if done:
            ready, held = held, []
        else:
            ready = [r for r in held if r["ts"] > high]
            held = [r for r in held if r["ts"] <= high]
        ready.sort(key=_newest_first, reverse=True)
        for record in ready:
            items.append(record)
            if len(items) == limit:
                return Page(items, encode_cursor(record["ts"], record["id"]), True)
        if done:
            return Page(items, None, False)
        if examined >= scan_budget and high < start:
            # Everything newer than `high` has been returned: the next page starts there (below
            # this page's start, so every page makes progress).
            return Page(items, encode_cursor(float(high), AFTER_EVERY_ID), True)


def _score(value: float | str) -> str:
    """A score bound as exact text (coredis would send a float with 15 digits, and lose
    batches whose score differs from it in the 16th)."""
    return value if isinstance(value, str) else repr(value)


def _newest_first(record: dict[str, Any]) -> tuple[float, str]:
    return record["ts"], record["id"]


async def last_stream_id(redis: coredis.Redis) -> str:
    """The id of the newest stream entry, or 0-0 when the stream is empty."""
    entries = await redis.xrevrange(layout.STREAM, count=1)
    return entries[0].identifier if entries else "0-0"


async def tail(
    redis: coredis.Redis, criteria: LogFilter, slow_ms: float = 1000.0, block_ms: int = 5000
) -> AsyncIterator[dict[str, Any]]:
    """Records written from now on that match criteria, in the order they were written."""
    cursor = await last_stream_id(redis)
    while True:
        response = await redis.xread({layout.STREAM: cursor}, count=100, block=block_ms)
        entries = list((response or {}).get(layout.STREAM, ()))
        if not entries:
            continue
        cursor = entries[-1].identifier
        keys = [str(e.field_values.get("b") or "") for e in entries]
        keys = [k for k in keys if k]
        for key, raw in zip(keys, await redis.mget(keys) if keys else [], strict=True):
            for record in decode_batch(key, raw):
                if criteria.matches(record, slow_ms):
                    yield record
