"""Redis key layout for request logs: records are stored in batches, one value per batch.

    req:{max_ts_ms}:{unique}             one batch of records (JSON: field names, then one row per
                                         record; bodies never stored). A record's id is
                                         {batch key}/{position}.
    idx:req:all                          every batch (time-range scans)
    idx:req:ip:{ip}                      batches holding a record from that client IP
    idx:req:host:{hostname}              ... for that proxy hostname
    idx:req:user:{user}                  ... by that authenticated user
    idx:req:client:{client_id}           ... by that OAuth client
    idx:req:status:{code}                ... with that HTTP status
    idx:req:errors                       ... with status >= 400 or a proxy-side error
    idx:req:slow                         ... lasting at least LOG_SLOW_SECONDS
    idx:req:path:{method}:{path}         ... for that method and exact path
    stream:requests                      live stream: one entry per batch, naming its key (capped)
    stats:requests:{YYYYMMDD:HH}         hash: hostname -> count ("*" = every host)
    stats:errors:{YYYYMMDD:HH}           hash: hostname -> error count
    stats:unique_ips:{hostname}:{YYYYMMDD:HH}  HyperLogLog of client IPs ("*" = every host)
    stats:latency:{hostname}:{YYYYMMDD:HH}     hash: log-scale bucket -> count (percentiles)

The names are the reference's; what changed is that an index member is a batch, not a record.
A batch costs Redis one SET, one stream entry and one ZADD per distinct index value, whatever
the number of records in it, so logging stays cheap at tens of thousands of requests a second.

Indexes are sorted sets; a batch's score is the newest request time (`ts`, the start) in it.
Every batch holds records whose times lie within BATCH_SPREAD seconds of each other (the writer
splits a batch that would not), so a search walking the scores downwards knows which batches can
still hold a record older than a given time (proxyd.logs.query). Every key gets a TTL of
LOG_RETENTION_HOURS on each write, and index members older than that are trimmed, so nothing
outlives the retention. Hours are UTC.
"""

from __future__ import annotations

import datetime as dt
import math

from proxyd.logs.wire import ROW_FIELDS

STREAM = "stream:requests"
IDX_ALL = "idx:req:all"
IDX_ERRORS = "idx:req:errors"
IDX_SLOW = "idx:req:slow"
ALL_HOSTS = "*"
# A batch holds records whose start times share one window of this many seconds (3600 is a
# multiple of it, so a batch also falls in one hour of the hourly stats). A search resuming at
# time T re-reads the batches scored up to T + BATCH_SPREAD: small keeps that cheap; large keeps
# long requests (written long after they started) from splitting batches.
BATCH_SPREAD = 2.0
# A stored row: the wire row's fields, then the serving process it came from.
STORED_FIELDS = (*ROW_FIELDS, "instance")
BATCH_VERSION = 1


def idx_ip(ip: str) -> str:
    return f"idx:req:ip:{ip}"


def idx_host(hostname: str) -> str:
    return f"idx:req:host:{hostname}"


def idx_user(user: str) -> str:
    return f"idx:req:user:{user}"


def idx_client(client_id: str) -> str:
    return f"idx:req:client:{client_id}"


def idx_status(status: int) -> str:
    return f"idx:req:status:{status}"


def idx_path(method: str, path: str) -> str:
    return f"idx:req:path:{method}:{path}"


def hour_bucket(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%d:%H")


def last_hours(hours: int, now: float) -> list[str]:
    """Hour buckets covering the last `hours` hours, the current one included, newest first."""
    return [hour_bucket(now - 3600 * i) for i in range(hours)]


def stats_requests(hour: str) -> str:
    return f"stats:requests:{hour}"


def stats_errors(hour: str) -> str:
    return f"stats:errors:{hour}"


def stats_unique(hostname: str, hour: str) -> str:
    return f"stats:unique_ips:{hostname}:{hour}"


def stats_latency(hostname: str, hour: str) -> str:
    return f"stats:latency:{hostname}:{hour}"


# Latency buckets: bucket i holds durations in [BASE * R**(i-1), BASE * R**i) milliseconds,
# R = 2**(1/8) (about 9% wide), so interpolated percentiles are within a few per cent.
LATENCY_BASE_MS = 0.05
LATENCY_RATIO = 2 ** (1 / 8)
_LOG_RATIO = math.log(LATENCY_RATIO)
MAX_BUCKET = 200  # ~ 1.6 h; anything longer lands here


def latency_bucket_us(duration_us: int) -> int:
    return latency_bucket(duration_us / 1000)


def latency_bucket(duration_ms: float) -> int:
    if duration_ms <= LATENCY_BASE_MS:
        return 0
    return min(MAX_BUCKET, int(math.log(duration_ms / LATENCY_BASE_MS) / _LOG_RATIO) + 1)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """[low, high) in milliseconds for a latency bucket."""
    if bucket == 0:
        return 0.0, LATENCY_BASE_MS
    return LATENCY_BASE_MS * LATENCY_RATIO ** (bucket - 1), LATENCY_BASE_MS * LATENCY_RATIO**bucket


def record_id(batch_key: str, position: int) -> str:
    return f"{batch_key}/{position}"
