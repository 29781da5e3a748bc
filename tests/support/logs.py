"""Helpers for the request-log tests: sending requests as a given client IP (through a trusted
proxy address), polling requestLogs until records arrive, reading Redis directly, and restarting
a test redis-server on the same port with its data."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import coredis
import httpx
import trio

from proxyd.logs import layout
from proxyd.logs.query import decode_batch
from tests.support.processes import RedisServer, redis_command

RECORD_FIELDS = """
    id timestamp clientIp hostname method path query status bytesIn bytesOut durationMs
    upstreamMs user clientId authOutcome userAgent referer error protocol instance
"""
REQUEST_LOGS = f"""
query($filter: RequestLogFilter, $limit: Int, $after: String) {{
  requestLogs(filter: $filter, limit: $limit, after: $after) {{
    items {{ {RECORD_FIELDS} }} endCursor hasMore
  }}
}}
"""
REQUEST_STATS = """
query($hostname: String, $hours: Int) {
  requestStats(hostname: $hostname, hours: $hours) {
    hostname hours requests errors uniqueVisitors p50Ms p95Ms p99Ms hourly { hour requests errors }
  }
}
"""


async def send(
    client: httpx.AsyncClient,
    proxyd: Any,
    host: str,
    path: str = "/",
    *,
    ip: str | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """One request through proxyd's public listener, as client `ip` (X-Forwarded-For; the test
    proxyd trusts 127.0.0.1)."""
    all_headers = {"Host": host, **(headers or {})}
    if ip:
        all_headers["X-Forwarded-For"] = ip
    return await client.request(
        method, proxyd.http_url + path, headers=all_headers, content=content
    )


async def logs(gql: Any, filter: dict | None = None, limit: int = 1000, after: str | None = None):
    data = await gql(REQUEST_LOGS, {"filter": filter or {}, "limit": limit, "after": after})
    return data["requestLogs"]


async def wait_for_logs(gql: Any, count: int, filter: dict | None = None, timeout: float = 10):
    """Poll requestLogs(filter) until it holds at least count records; return the items."""
    with trio.fail_after(timeout):
        while True:
            page = await logs(gql, filter)
            if len(page["items"]) >= count:
                return page["items"]
            await trio.sleep(0.05)


def redis_client(url: str) -> coredis.Redis:
    return coredis.Redis.from_url(url, decode_responses=True)


async def stored_batches(redis: coredis.Redis, index: str = layout.IDX_ALL) -> dict[str, list]:
    """{batch key: its records} for every batch an index names, read straight from Redis."""
    keys = await redis.zrange(index, 0, -1)
    values = await redis.mget(keys) if keys else []
    return {key: decode_batch(key, raw) for key, raw in zip(keys, values, strict=True)}


async def stored_records(redis_url: str) -> list[dict]:
    """Every record stored in the Redis (through idx:req:all), in no particular order."""
    redis = redis_client(redis_url)
    async with redis:
        batches = await stored_batches(redis)
    return [record for records in batches.values() for record in records]


async def dump_everything(redis: coredis.Redis) -> str:
    """Every key and every value in the Redis, as one text (to search for leaked secrets)."""
    parts: list[str] = []
    async for key in redis.scan_iter(match="*", count=1000):
        kind = await redis.type(key)
        parts.append(key)
        if kind == "string":
            parts.append(str(await redis.get(key)))
        elif kind == "hash":
            parts.append(repr(await redis.hgetall(key)))
        elif kind == "zset":
            parts.append(repr(await redis.zrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(await redis.smembers(key)))
        elif kind == "list":
            parts.append(repr(await redis.lrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(repr(await redis.xrange(key)))
    return "\n".join(parts)


def restart_redis(server: RedisServer) -> None:
    """Start redis-server again on the same port and directory (it reloads dump.rdb)."""
    argv = [str(a) for a in server.process.args]
    server.process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis_command(server.port, "PING").startswith(b"+PONG"):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not restart")
