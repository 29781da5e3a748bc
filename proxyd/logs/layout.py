"""Redis key layout for request logs (after the reference's RequestLogger schema).

    req:{ts_ms}:{ip}:{unique}            one record (JSON string; bodies never stored)
    idx:req:all                          every record (time-range scans)
    idx:req:ip:{ip}                      by client IP
    idx:req:host:{hostname}              by proxy hostname
    idx:req:user:{user}                  by authenticated user
    idx:req:client:{client_id}           by OAuth client
    idx:req:status:{code}                by HTTP status
    idx:req:errors                       status >= 400 or a proxy-side error
    idx:req:slow                         duration >= LOG_SLOW_SECONDS
    idx:req:path:{method}:{path}         by method and exact path
    stream:requests                      live stream (capped; source of the live subscription)
    stats:requests:{YYYYMMDD:HH}         hash: hostname -> count ("*" = every host)
    stats:errors:{YYYYMMDD:HH}           hash: hostname -> error count
    stats:unique_ips:{hostname}:{YYYYMMDD:HH}  HyperLogLog of client IPs ("*" = every host)
    stats:latency:{hostname}:{YYYYMMDD:HH}     hash: log-scale bucket -> count (percentiles)

Indexes are sorted sets (score = request time, member = record key). Every key gets a TTL of
LOG_RETENTION_HOURS on each write, and index members older than that are trimmed, so nothing
outlives the retention. Hours are UTC.
"""

from __future__ import annotations

import datetime as dt
import math

STREAM = "stream:requests"
IDX_ALL = "idx:req:all"
IDX_ERRORS = "idx:req:errors"
IDX_SLOW = "idx:req:slow"
ALL_HOSTS = "*"


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


def latency_bucket(duration_ms: float) -> int:
    if duration_ms <= LATENCY_BASE_MS:
        return 0
    return min(MAX_BUCKET, int(math.log(duration_ms / LATENCY_BASE_MS) / _LOG_RATIO) + 1)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """[low, high) in milliseconds for a latency bucket."""
    if bucket == 0:
        return 0.0, LATENCY_BASE_MS
    return LATENCY_BASE_MS * LATENCY_RATIO ** (bucket - 1), LATENCY_BASE_MS * LATENCY_RATIO**bucket


def index_keys(record: dict, slow_ms: float) -> list[str]:
    """Every index a stored record belongs to."""
    keys = [
        IDX_ALL,
        idx_ip(record["client_ip"]),
        idx_host(record["hostname"]),
        idx_status(record["status"]),
        idx_path(record["method"], record["path"]),
    ]
    if record.get("user"):
        keys.append(idx_user(record["user"]))
    if record.get("client_id"):
        keys.append(idx_client(record["client_id"]))
    if record["status"] >= 400 or record.get("error"):
        keys.append(IDX_ERRORS)
    if record["duration_ms"] >= slow_ms:
        keys.append(IDX_SLOW)
    return keys
