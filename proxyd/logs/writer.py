"""RequestLog: the bounded in-memory channel between the request path and Redis, and the writer
task that drains it.

The request path only calls `submit()`, a `send_nowait` on a bounded trio memory channel: when the
channel is full the record is dropped and counted, so a slow or absent Redis never delays a request.
The writer task (one per process, its own Redis client) waits for a record, gathers for
LOG_BATCH_INTERVAL seconds, and writes the whole batch in one round trip (a Lua script): the record
(SET with a TTL), its stream entry, and per distinct key one ZADD/HINCRBY/PFADD with PEXPIRE. A
batch that cannot be written (Redis down, or slower than WRITE_TIMEOUT) is dropped and counted too;
the writer backs off and resumes by itself when Redis answers again.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import time
from typing import Any

import coredis
import trio

from proxyd.config import Settings
from proxyd.logs import layout
from proxyd.logs.metrics import Metrics
from proxyd.logs.record import RequestRecord
from proxyd.store.redis import connect, describe

log = logging.getLogger("proxyd.logs.writer")

MAX_BATCH = 2000
WRITE_TIMEOUT = 5.0
MAX_BACKOFF = 5.0


class RequestLog:
    """The request log of one process: channel, counters, metrics and the writer task."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.enabled = settings.request_logging
        self.metrics = Metrics()
        self.instance = settings.instance
        self.retention_s = settings.log_retention_hours * 3600
        self.retention_ms = max(1, int(self.retention_s * 1000))
        self.slow_ms = settings.log_slow_seconds * 1000
        self.trusted_proxies = settings.trusted_proxies
        self._send, self._receive = trio.open_memory_channel[RequestRecord](
            settings.log_buffer_size
        )
        self.dropped = 0
        self.written = 0
        self.redis_ok = True
        self._trimmed: dict[str, float] = {}
        self._script: Any = None

    # -- request path ----------------------------------------------------------------------------
    def submit(self, record: RequestRecord) -> None:
        """Queue a record for the writer; never blocks (a full buffer drops and counts it)."""
        try:
            self._send.send_nowait(record)
        except trio.WouldBlock:
            self.dropped += 1

    @property
    def queued(self) -> int:
        return self._send.statistics().current_buffer_used

    # -- writer task -----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drain the channel into Redis in batches, forever."""
        redis = connect(self.redis_url)
        async with redis:
            task_status.started()
            delay = 0.0
            while True:
                batch = await self._next_batch()
                if await self._write(redis, batch):
                    delay = 0.0
                    continue
                self.dropped += len(batch)
                delay = min(max(delay * 2, 0.25), MAX_BACKOFF)
                await trio.sleep(delay)

    async def _next_batch(self) -> list[RequestRecord]:
        batch = [await self._receive.receive()]
        await trio.sleep(self.settings.log_batch_interval)
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        return batch

    async def _write(self, redis: coredis.Redis, batch: list[RequestRecord]) -> bool:
        error = ""
        with trio.move_on_after(WRITE_TIMEOUT) as timer:
            try:
                await self.write_batch(redis, batch)
            except (OSError, coredis.exceptions.RedisError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        if timer.cancelled_caught:
            error = f"no answer within {WRITE_TIMEOUT:g} s"
        if error:
            if self.redis_ok:
                log.warning(
                    "request log: cannot write to Redis at %s (%s); dropping records until it "
                    "answers again",
                    describe(self.redis_url),
                    error,
                )
            self.redis_ok = False
            return False
        if not self.redis_ok:
            log.info("request log: Redis answers again; %d records dropped so far", self.dropped)
        self.redis_ok = True
        self.written += len(batch)
        return True

    async def write_batch(self, redis: coredis.Redis, batch: list[RequestRecord]) -> None:
        """Write records, indexes, stream entries and stats for a batch in one round trip.

        Python works out every key (cheap dict work); one Lua script call then applies the whole
        batch inside Redis. Issuing the same writes as pipelined commands cost about 140 us of
        proxyd CPU per record (command objects in coredis); this costs a small fraction of it.
        """
        now = time.time()
        zsets: dict[str, dict[str, float]] = collections.defaultdict(dict)
        counters: collections.Counter[tuple[str, str]] = collections.Counter()
        visitors: dict[str, set[str]] = collections.defaultdict(set)
        records: list[str] = []
        for record in batch:
            record.instance = self.instance
            stored = record.to_dict()
            key = stored["id"]
            records += (key, json.dumps(stored, separators=(",", ":")))
            for index in layout.index_keys(stored, self.slow_ms):
                zsets[index][key] = record.ts
            hour = _hour(int(record.ts // 3600))
            bucket = str(layout.latency_bucket(record.duration_ms))
            for host in (record.hostname, layout.ALL_HOSTS):
                counters[(layout.stats_requests(hour), host)] += 1
                if record.is_error:
                    counters[(layout.stats_errors(hour), host)] += 1
                counters[(layout.stats_latency(host, hour), bucket)] += 1
                if record.client_ip:
                    visitors[layout.stats_unique(host, hour)].add(record.client_ip)
        cutoff = now - self.retention_s
        trim_every = min(60.0, self.retention_s / 4)
        if len(self._trimmed) > 100_000:
            self._trimmed.clear()
        trim = []
        for key in [*zsets, layout.STREAM]:
            if now - self._trimmed.get(key, 0.0) >= trim_every:
                self._trimmed[key] = now
                trim.append(key)
        payload = {
            "ttl": self.retention_ms,
            "stream": layout.STREAM,
            "maxlen": self.settings.log_stream_maxlen,
            "cutoff": repr(cutoff),
            "cutoff_ms": str(int(cutoff * 1000)),
            # Scores as text: Lua would print numbers with only 14 significant digits.
            "zadd": [
                [k, [x for m, sc in v.items() for x in (repr(sc), m)]] for k, v in zsets.items()
            ],
            "hincr": [[k, f, n] for (k, f), n in counters.items()],
            "pfadd": [[k, sorted(v)] for k, v in visitors.items()],
            "trim": trim,
        }
        if self._script is None:
            self._script = redis.register_script(WRITE_SCRIPT)
        await self._script(keys=[], args=[json.dumps(payload, separators=(",", ":")), *records])


@functools.lru_cache(maxsize=64)
def _hour(hour_number: int) -> str:
    return layout.hour_bucket(hour_number * 3600)


# Applies one batch inside Redis (ARGV[1]: JSON of the aggregated writes; then key, record pairs) (standalone Redis; the keys are computed by the caller).
WRITE_SCRIPT = """
local b = cjson.decode(ARGV[1])
local ttl = b.ttl
local function chunks(list, size, fn)
  for i = 1, #list, size do fn({unpack(list, i, math.min(i + size - 1, #list))}) end
end
for i = 2, #ARGV, 2 do
  redis.call('SET', ARGV[i], ARGV[i + 1], 'PX', ttl)
  redis.call('XADD', b.stream, 'MAXLEN', '~', b.maxlen, '*', 'r', ARGV[i + 1])
end
for _, z in ipairs(b.zadd) do
  chunks(z[2], 1000, function(part) redis.call('ZADD', z[1], unpack(part)) end)
  redis.call('PEXPIRE', z[1], ttl)
end
for _, h in ipairs(b.hincr) do
  redis.call('HINCRBY', h[1], h[2], h[3])
  redis.call('PEXPIRE', h[1], ttl)
end
for _, p in ipairs(b.pfadd) do
  chunks(p[2], 1000, function(part) redis.call('PFADD', p[1], unpack(part)) end)
  redis.call('PEXPIRE', p[1], ttl)
end
for _, k in ipairs(b.trim) do
  if k == b.stream then
    redis.call('XTRIM', k, 'MINID', '~', b.cutoff_ms)
  else
    redis.call('ZREMRANGEBYSCORE', k, '-inf', b.cutoff)
  end
end
redis.call('PEXPIRE', b.stream, ttl)
return (#ARGV - 1) / 2
"""
