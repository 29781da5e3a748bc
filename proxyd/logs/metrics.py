"""Prometheus metrics: in-process counters updated on the request path (plain dict and list
increments, no locks: one trio thread) and the text exposition served at GET /metrics on API_PORT.

Values read from Redis at scrape time: event-consumer lag (XINFO GROUPS on events:workflow) and
certificate expiry times (cert:{name} JSON written by the TLS capability; a certificate without an
expiry field gives no sample).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
from typing import Any, Protocol

import coredis
import trio

from proxyd.store import keys

log = logging.getLogger("proxyd.logs.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_CLASS_OF = {int(name[0]): name for name in STATUS_CLASSES}  # 2 -> "2xx"
CERT_EXPIRY_FIELDS = ("expires_at", "expiry", "not_after", "notAfter", "expires")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters of this process since it started."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.latency: dict[str, list[float]] = {}  # per host: bucket counts..., sum, count
        self.upstream_errors: dict[str, int] = {}
        self.upstream_timeouts: dict[str, int] = {}
        self.active_http = 0
        self.active_websockets = 0

    def observe(self, hostname: str, status: int, seconds: float, upstream_error: str) -> None:
        key = (hostname, _CLASS_OF.get(status // 100, "other"))
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(hostname)
        if hist is None:
            hist = self.latency[hostname] = [0.0] * (len(LATENCY_BUCKETS) + 3)
        hist[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        hist[-2] += seconds
        hist[-1] += 1
        if upstream_error == "timeout":
            self.upstream_timeouts[hostname] = self.upstream_timeouts.get(hostname, 0) + 1
        elif upstream_error:
            self.upstream_errors[hostname] = self.upstream_errors.get(hostname, 0) + 1


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        if labels:
            inner = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {_fmt(value)}")
        else:
            self.lines.append(f"{name} {_fmt(value)}")


class LogCounters(Protocol):
    """What the metrics page reads from the request log (proxyd.logs.writer.RequestLog)."""

    metrics: Metrics
    dropped: int
    written: int
    queued: int


async def render_metrics(
    request_log: LogCounters | None, *, redis: coredis.Redis, instance: str, proxies: int
) -> str:
    """The Prometheus text exposition (format 0.0.4) for this process (plain values: the request
    log or None, the Redis client, this process's instance name, the number of proxies)."""
    out = _Text()
    metrics: Metrics = request_log.metrics if request_log is not None else Metrics()

    out.family("proxyd_requests_total", "counter", "Proxied requests by proxy and status class.")
    for (host, cls), count in sorted(metrics.requests.items()):
        out.sample("proxyd_requests_total", count, proxy=host, status_class=cls)

    out.family("proxyd_request_duration_seconds", "histogram", "Time to serve a proxied request.")
    for host, hist in sorted(metrics.latency.items()):
        running = 0.0
        for bound, count in zip(LATENCY_BUCKETS, hist, strict=False):
            running += count
            out.sample("proxyd_request_duration_seconds_bucket", running, proxy=host, le=f"{bound}")
        out.sample("proxyd_request_duration_seconds_bucket", hist[-1], proxy=host, le="+Inf")
        out.sample("proxyd_request_duration_seconds_sum", hist[-2], proxy=host)
        out.sample("proxyd_request_duration_seconds_count", hist[-1], proxy=host)

    out.family("proxyd_upstream_errors_total", "counter", "Upstream failures (502) by proxy.")
    for host, count in sorted(metrics.upstream_errors.items()):
        out.sample("proxyd_upstream_errors_total", count, proxy=host)
    out.family("proxyd_upstream_timeouts_total", "counter", "Upstream timeouts (504) by proxy.")
    for host, count in sorted(metrics.upstream_timeouts.items()):
        out.sample("proxyd_upstream_timeouts_total", count, proxy=host)

    out.family("proxyd_active_requests", "gauge", "HTTP requests being served now.")
    out.sample("proxyd_active_requests", metrics.active_http)
    out.family("proxyd_active_websockets", "gauge", "WebSocket connections open now.")
    out.sample("proxyd_active_websockets", metrics.active_websockets)
    out.family("proxyd_proxies", "gauge", "Proxies this process serves.")
    out.sample("proxyd_proxies", proxies)

    dropped = request_log.dropped if request_log is not None else 0
    written = request_log.written if request_log is not None else 0
    queued = request_log.queued if request_log is not None else 0
    out.family(
        "proxyd_log_records_dropped_total",
        "counter",
        "Request-log records dropped (buffer full or Redis unavailable).",
    )
    out.sample("proxyd_log_records_dropped_total", dropped)
    out.family("proxyd_log_records_written_total", "counter", "Request-log records written.")
    out.sample("proxyd_log_records_written_total", written)
    out.family("proxyd_log_records_queued", "gauge", "Request-log records waiting in memory.")
    out.sample("proxyd_log_records_queued", queued)

    lag, certs = None, []
    with trio.move_on_after(2):
        lag = await _consumer_lag(redis, instance)
        certs = await _certificate_expiries(redis)
    out.family(
        "proxyd_event_consumer_lag",
        "gauge",
        "Events on events:workflow not yet delivered to this process's consumer group.",
    )
    if lag is not None:
        out.sample("proxyd_event_consumer_lag", lag, instance=instance)
    out.family(
        "proxyd_certificate_expiry_timestamp_seconds",
        "gauge",
        "When each stored certificate expires (Unix time).",
    )
    for name, expiry in certs:
        out.sample("proxyd_certificate_expiry_timestamp_seconds", expiry, cert=name)
    return "\n".join(out.lines) + "\n"


async def _consumer_lag(redis: coredis.Redis, instance: str) -> int | None:
    from proxyd.events.consumer import group_name

    try:
        groups = await redis.xinfo_groups(keys.EVENTS_STREAM)
    except (OSError, coredis.exceptions.RedisError):
        return None
    wanted = group_name(instance)
    for group in groups:
        if group.get("name") == wanted:
            lag = group.get("lag")
            return int(lag) if lag is not None else None
    return None


async def _certificate_expiries(redis: coredis.Redis) -> list[tuple[str, float]]:
    found: list[tuple[str, float]] = []
    try:
        names = [key async for key in redis.scan_iter(match="cert:*", count=500)]
        values = await redis.mget(names) if names else []
    except (OSError, coredis.exceptions.RedisError):
        return found
    for key, raw in zip(names, values, strict=False):
        expiry = _expiry(raw)
        if expiry is not None:
            found.append((key[len("cert:") :], expiry))
    return sorted(found)


def _expiry(raw: Any) -> float | None:
    try:
        data = json.loads(raw) if raw else None
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    for field in CERT_EXPIRY_FIELDS:
        value = data.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and value:
            try:
                when = dt.datetime.fromisoformat(value)
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return when.timestamp()
    return None
