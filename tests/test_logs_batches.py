"""Batched record storage against a real redis-server: searches return records newest first in
exact order across batches written out of order (a long request finishing late, batches split by
time window, equal times), pages have no gaps or repeats whatever the page size or scan budget,
time bounds hold, and a damaged batch value or a forged cursor is refused, never a crash."""

from __future__ import annotations

import base64
import json
import random

import pytest
import trio

from proxyd.logs import layout
from proxyd.logs.batch import BatchWriter
from proxyd.logs.query import LogFilter, QueryError, search, tail
from proxyd.logs.record import stored_row
from tests.support.logs import redis_client

BASE = 1_790_000_000.0  # a fixed time well inside one hour bucket's range of tests


def _row(
    ts: float, path: str, *, ip: str = "192.0.2.1", status: int = 200, user: str = ""
) -> tuple:
    wire_row = (
        round(ts * 1_000_000),
        ip,
        "b.test",
        "GET",
        path,
        "",
        status,
        0,
        1,
        2.0,
        1.0,
        "ua",
        "",
        "http",
        user,
        "",
        "",
        "",
    )
    return stored_row(wire_row, "inst-1")


def _writer() -> BatchWriter:
    # A long retention: the fixed times above must not be trimmed as too old.
    return BatchWriter(retention_hours=24 * 365 * 50, slow_seconds=1, stream_maxlen=1000)


async def _all_pages(redis, criteria: LogFilter, limit: int, budget: int) -> list[str]:
    paths, after = [], None
    for _ in range(10_000):
        page = await search(redis, criteria, limit=limit, after=after, scan_budget=budget)
        paths += [r["path"] for r in page.items]
        if not page.has_more:
            return paths
        after = page.end_cursor
    raise AssertionError("pagination did not end")


async def test_pages_are_exactly_newest_first_across_out_of_order_batches(redis_url):
    rng = random.Random(7)
    # 600 requests over 100 s; they finish (and are written) in an order unlike their start.
    # Whole microseconds, as records store them.
    starts = [(BASE * 1_000_000 + rng.randrange(100_000_000)) / 1_000_000 for _ in range(600)]
    starts[10] = starts[11] = starts[12]  # equal start times
    rows = [_row(ts, f"/{i}", user="alice" if i % 7 == 0 else "") for i, ts in enumerate(starts)]
    finish_order = sorted(range(600), key=lambda i: starts[i] + rng.uniform(0, 30))
    # A request started first but finishing last (a long download), written in the last batch.
    finish_order.remove(0)
    finish_order.append(0)
    starts[0] = BASE - 50
    rows[0] = _row(starts[0], "/0", user="alice")
    writer = _writer()
    redis = redis_client(redis_url)
    async with redis:
        for first in range(0, 600, 45):  # batches of 45, each spanning several windows
            await writer.write_batch(redis, [rows[i] for i in finish_order[first : first + 45]])
        batches = await redis.zrange(layout.IDX_ALL, 0, -1)
        assert len(batches) > 600 // 45  # split by window

        def expected(pred=lambda i: True, lo=-1e18, hi=1e18) -> list[str]:
            picked = [i for i in range(600) if pred(i) and lo <= starts[i] <= hi]
            ordered = sorted(picked, key=lambda i: (starts[i], f"/{i}"), reverse=True)
            return [f"/{i}" for i in ordered]

        newest_first = await _all_pages(redis, LogFilter(), limit=1000, budget=10**6)
        # Equal times are ordered by record id, not path: compare the times, then the sets.
        by_path = {f"/{i}": starts[i] for i in range(600)}
        assert [by_path[p] for p in newest_first] == sorted(starts, reverse=True)
        assert sorted(newest_first) == sorted(expected())
        for limit, budget in ((1, 10**6), (7, 10**6), (50, 90), (1000, 45)):
            assert await _all_pages(redis, LogFilter(), limit, budget) == newest_first
        alice = LogFilter.parse({"user": "alice"})
        alice_pages = await _all_pages(redis, alice, limit=3, budget=100)
        assert alice_pages == [p for p in newest_first if int(p[1:]) % 7 == 0]
        assert alice_pages[-1] == "/0"  # the long request, written last, comes out last
        since, until = BASE + 20, BASE + 40
        window = LogFilter.parse({"since": since, "until": until})
        bounded = await _all_pages(redis, window, limit=9, budget=200)
        assert bounded == [p for p in newest_first if since <= by_path[p] <= until]
        assert bounded


async def test_a_damaged_batch_is_skipped_and_a_forged_cursor_refused(redis_url):
    writer = _writer()
    redis = redis_client(redis_url)
    async with redis:
        await writer.write_batch(redis, [_row(BASE + 1, "/kept")])
        await writer.write_batch(redis, [_row(BASE + 2, "/damaged")])
        damaged = (await redis.zrange(layout.IDX_ALL, -1, -1))[0]
        for junk in ("not json", '{"v": 1, "fields": 3, "rows": [[1]]}', '{"v": 99}', "[]"):
            await redis.set(damaged, junk)
            page = await search(redis, LogFilter())
            assert [r["path"] for r in page.items] == ["/kept"]
        forged_cursors = [
            "garbage!",
            _cursor(["x", "id"]),
            _cursor([1.0]),
            _cursor({"a": 1}),
            _cursor([True, "id"]),
            base64.urlsafe_b64encode(b'[NaN, "id"]').decode(),
            base64.urlsafe_b64encode(b'[Infinity, "id"]').decode(),
        ]
        for forged in forged_cursors:
            with pytest.raises(QueryError, match="not a cursor"):
                await search(redis, LogFilter(), after=forged)


async def test_records_stored_one_per_key_before_batches_are_still_found(redis_url):
    writer = _writer()
    redis = redis_client(redis_url)
    async with redis:
        await writer.write_batch(redis, [_row(BASE + 1, "/new-1"), _row(BASE + 3, "/new-3")])
        old_key = f"req:{int((BASE + 2) * 1000)}:192.0.2.9:abc1"
        old = {"id": old_key, "ts": BASE + 2, "path": "/old-2", "status": 200, "duration_ms": 1.0}
        await redis.set(old_key, json.dumps(old))
        await redis.zadd(layout.IDX_ALL, {old_key: BASE + 2})
        page = await search(redis, LogFilter())
        assert [r["path"] for r in page.items] == ["/new-3", "/old-2", "/new-1"]
        assert page.items[1]["id"] == old_key


@pytest.mark.parametrize("bound", ["nan", "NaN", "inf", "-Infinity", "1e400"])
def test_time_bounds_must_be_finite(bound):
    for name in ("since", "until"):
        with pytest.raises(QueryError, match=f"filter.{name}"):
            LogFilter.parse({name: bound})


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def test_the_live_tail_yields_each_written_record_once_in_write_order(redis_url):
    writer = _writer()
    redis = redis_client(redis_url)
    async with redis:
        followed = tail(redis, LogFilter.parse({"path": "/t"}), block_ms=200)
        first = followed.__anext__()
        rows = [_row(BASE + 5 - i, "/t" if i != 1 else "/other") for i in range(4)]
        async with trio.open_nursery() as nursery:

            async def write_later() -> None:
                await trio.sleep(0.3)  # the tail starts from the stream's end: write after
                await redis.xadd(layout.STREAM, {"b": "req:0:none"})  # a batch already expired
                await writer.write_batch(redis, rows[:2])
                await writer.write_batch(redis, rows[2:])

            nursery.start_soon(write_later)
            with trio.fail_after(10):
                got = [await first, await followed.__anext__(), await followed.__anext__()]
        assert [r["ts"] for r in got] == [BASE + 5, BASE + 3, BASE + 2]
        await followed.aclose()
