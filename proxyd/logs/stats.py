"""Request statistics over the last N hours from the hourly keys: request and error counts
(stats:requests / stats:errors hashes), unique visitors (PFCOUNT over the union of the hourly
HyperLogLogs) and p50/p95/p99 from the merged hourly latency histograms (a sliding window of
whole hours; interpolated inside a bucket, so within a few per cent of the exact value).
"""

from __future__ import annotations

import time
from typing import Any

import coredis

from proxyd.logs import layout

MAX_HOURS = 24 * 31


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The value below which `fraction` of the samples fall, from bucket counts."""
    total = sum(histogram.values())
    if not total:
        return None
    target = fraction * total
    running = 0.0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if running + count >= target:
            low, high = layout.bucket_bounds(bucket)
            inside = (target - running) / count if count else 0.0
            return round(low + (high - low) * inside, 3)
        running += count
    return round(layout.bucket_bounds(max(histogram))[1], 3)


async def request_stats(
    redis: coredis.Redis, hostname: str | None, hours: int, now: float | None = None
) -> dict[str, Any]:
    """Totals, unique visitors, percentiles and per-hour counts for one host or all hosts."""
    now = time.time() if now is None else now
    host = hostname or layout.ALL_HOSTS
    buckets = layout.last_hours(hours, now)
    async with redis.pipeline(transaction=False) as pipe:
        requests = [pipe.hget(layout.stats_requests(h), host) for h in buckets]
        errors = [pipe.hget(layout.stats_errors(h), host) for h in buckets]
        latencies = [pipe.hgetall(layout.stats_latency(host, h)) for h in buckets]
        unique = pipe.pfcount([layout.stats_unique(host, h) for h in buckets])
    histogram: dict[int, int] = {}
    for request in latencies:
        for bucket, count in (await request or {}).items():
            histogram[int(bucket)] = histogram.get(int(bucket), 0) + int(count)
    hourly = []
    for hour, req, err in zip(buckets, requests, errors, strict=True):
        hourly.append(
            {"hour": hour, "requests": int(await req or 0), "errors": int(await err or 0)}
        )
    return {
        "hostname": hostname,
        "hours": hours,
        "requests": sum(h["requests"] for h in hourly),
        "errors": sum(h["errors"] for h in hourly),
        "unique_visitors": int(await unique),
        "p50_ms": percentile(histogram, 0.50),
        "p95_ms": percentile(histogram, 0.95),
        "p99_ms": percentile(histogram, 0.99),
        "hourly": hourly,
    }
