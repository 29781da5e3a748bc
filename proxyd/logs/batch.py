"""Writing a batch of request rows into Redis in one round trip (used by the log-writer process,
proxyd.logs.sink), after proxyd.logs.layout: the rows as one value per time window, one stream
entry per value, one ZADD per distinct index value, and the hourly counters, HyperLogLogs and
latency histograms aggregated in memory first, all applied by one Lua script call.

The work per record is kept to column operations in C (zip, set, Counter, map): distinct values
and counts are taken over the batch's columns, never record by record in Python. Storing one
value and one index entry per record cost about 30 us of CPU per record between this process
and redis-server; this costs a few.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import os
import time
from collections.abc import Iterable
from typing import Any

import coredis

from proxyd.logs import layout

# Column positions in a stored row (layout.STORED_FIELDS).
_F = {name: i for i, name in enumerate(layout.STORED_FIELDS)}
TS, IP, HOST, METHOD, PATH = _F["ts_us"], _F["client_ip"], _F["hostname"], _F["method"], _F["path"]
STATUS, DURATION, USER, CLIENT = _F["status"], _F["duration_us"], _F["user"], _F["client_id"]
ERROR = _F["error"]

# A per-process tag keeps batch keys unique across writer processes sharing a Redis.
_PROCESS_TAG = os.urandom(3).hex()
_sequence = itertools.count()


class BatchWriter:
    """Turns batches of stored rows into Redis writes (keys after proxyd.logs.layout)."""

    def __init__(self, *, retention_hours: float, slow_seconds: float, stream_maxlen: int) -> None:
        self.retention_s = retention_hours * 3600
        self.retention_ms = max(1, int(self.retention_s * 1000))
        self.slow_ms = slow_seconds * 1000
        self.stream_maxlen = stream_maxlen
        self._trimmed: dict[str, float] = {}
        self._script: Any = None

    async def write_batch(self, redis: coredis.Redis, rows: list[tuple]) -> None:
        """Write rows (layout.STORED_FIELDS order, already masked and checked), their indexes,
        stream entries and stats in one round trip."""
        if not rows:
            return
        now = time.time()
        batches: list[list[Any]] = []
        blobs: list[str] = []
        counters: collections.Counter[tuple[str, str]] = collections.Counter()
        visitors: dict[str, set[str]] = collections.defaultdict(set)
        for window in _windows(rows):
            key, score, indexes, blob = self._store(window, counters, visitors)
            batches.append([key, score, indexes])
            blobs.append(blob)
        cutoff = now - self.retention_s
        trim_every = min(60.0, self.retention_s / 4)
        if len(self._trimmed) > 100_000:
            self._trimmed.clear()
        trim = []
        for key in itertools.chain({i for b in batches for i in b[2]}, (layout.STREAM,)):
            if now - self._trimmed.get(key, 0.0) >= trim_every:
                self._trimmed[key] = now
                trim.append(key)
        payload = {
            "ttl": self.retention_ms,
            "stream": layout.STREAM,
            "maxlen": self.stream_maxlen,
            "cutoff": repr(cutoff),
            "cutoff_ms": str(int(cutoff * 1000)),
            "batches": batches,
            "hincr": [[k, f, n] for (k, f), n in counters.items()],
            "pfadd": [[k, sorted(v)] for k, v in visitors.items()],
            "trim": trim,
        }
        if self._script is None:
            self._script = redis.register_script(WRITE_SCRIPT)
        await self._script(keys=[], args=[_encode(payload), *blobs])

    def _store(
        self,
        rows: list[tuple],
        counters: collections.Counter[tuple[str, str]],
        visitors: dict[str, set[str]],
    ) -> tuple[str, str, list[str], str]:
        """(key, score, index keys, JSON value) of one window's batch; adds its stats."""
        columns = list(zip(*rows, strict=True))
        times, ips, hosts = columns[TS], columns[IP], columns[HOST]
        statuses, durations = columns[STATUS], columns[DURATION]
        newest = max(times)  # microseconds
        key = f"req:{newest // 1000}:{_PROCESS_TAG}{next(_sequence):x}"
        failed = [s >= 400 or bool(e) for s, e in zip(statuses, columns[ERROR], strict=True)]
        indexes = [
            layout.IDX_ALL,
            *map(layout.idx_ip, set(ips)),
            *map(layout.idx_host, set(hosts)),
            *map(layout.idx_status, set(statuses)),
            *itertools.starmap(layout.idx_path, set(zip(columns[METHOD], columns[PATH]))),
            *map(layout.idx_user, set(columns[USER]) - {""}),
            *map(layout.idx_client, set(columns[CLIENT]) - {""}),
        ]
        if any(failed):
            indexes.append(layout.IDX_ERRORS)
        if max(durations) >= self.slow_ms * 1000:
            indexes.append(layout.IDX_SLOW)

        hour = _hour(newest // 3_600_000_000)  # a window never crosses an hour
        requests, errors = layout.stats_requests(hour), layout.stats_errors(hour)
        buckets = list(map(layout.latency_bucket_us, durations))
        every = layout.ALL_HOSTS
        counters[(requests, every)] += len(rows)
        for host, n in collections.Counter(hosts).items():
            counters[(requests, host)] += n
        failing = [h for h, bad in zip(hosts, failed, strict=True) if bad]
        if failing:
            counters[(errors, every)] += len(failing)
            for host, n in collections.Counter(failing).items():
                counters[(errors, host)] += n
        for bucket, n in collections.Counter(buckets).items():
            counters[(layout.stats_latency(every, hour), str(bucket))] += n
        for (host, bucket), n in collections.Counter(zip(hosts, buckets)).items():
            counters[(layout.stats_latency(host, hour), str(bucket))] += n
        for host, ip in set(zip(hosts, ips)):
            if ip:
                visitors[layout.stats_unique(host, hour)].add(ip)
        visitors[layout.stats_unique(every, hour)].update(ip for ip in set(ips) if ip)
        blob = _encode({"v": layout.BATCH_VERSION, "fields": layout.STORED_FIELDS, "rows": rows})
        # Scores as text: Lua would print numbers with only 14 significant digits. Readers
        # compute a record's time the same way (record.from_stored).
        return key, repr(newest / 1_000_000), indexes, blob


def _windows(rows: list[tuple]) -> Iterable[list[tuple]]:
    """The rows split by BATCH_SPREAD windows of their start time (one window, nearly always)."""
    spread = int(layout.BATCH_SPREAD * 1_000_000)
    times = [row[TS] for row in rows]
    if min(times) // spread == max(times) // spread:
        return (rows,)
    windows: dict[int, list[tuple]] = collections.defaultdict(list)
    for row in rows:
        windows[row[TS] // spread].append(row)
    return windows.values()


_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per call


@functools.lru_cache(maxsize=64)
def _hour(hour_number: int) -> str:
    return layout.hour_bucket(hour_number * 3600)


# Applies one batch inside Redis (standalone Redis; the keys are computed by the caller).
# ARGV[1]: JSON of the writes; then the stored value of each batch, in the order of b.batches
# ([key, score, [index keys]]).
WRITE_SCRIPT = """
local b = cjson.decode(ARGV[1])
local ttl = b.ttl
local function chunks(list, size, fn)
  for i = 1, #list, size do fn({unpack(list, i, math.min(i + size - 1, #list))}) end
end
for i, batch in ipairs(b.batches) do
  local key, score = batch[1], batch[2]
  redis.call('SET', key, ARGV[i + 1], 'PX', ttl)
  redis.call('XADD', b.stream, 'MAXLEN', '~', b.maxlen, '*', 'b', key)
  for _, index in ipairs(batch[3]) do
    redis.call('ZADD', index, score, key)
    redis.call('PEXPIRE', index, ttl)
  end
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
return #b.batches
"""
