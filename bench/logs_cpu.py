"""Micro-benchmark: CPU the request log costs the serving process, per record.

    PYTHONPATH=. python bench/logs_cpu.py [--rate 5000] [--seconds 4]

Starts a throwaway redis-server, then in this process (standing in for a serving worker) pushes
`rate` requests a second through `proxyd.logs.hotpath.observe` around a trivial ASGI handler, in
bursts every 10 ms, with the request log's writer running as proxyd runs it. The same loop with
logging off (the handler called directly) is the baseline. It prints, per record:

- serving process: time.process_time() of this process (logging on minus off), which is what
  the request path pays, and includes everything the writer does in this process;
- writer process: CPU of this process's child processes (redis-server excluded), from
  /proc/<pid>/stat, i.e. the separate log-writer process when there is one.

- redis-server: CPU of the throwaway redis-server, per record.

Everything runs on loopback. Not a test: no assertions.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile
import time
from pathlib import Path

import trio

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proxyd_target import start_redis
from proxyd.config import load_settings
from proxyd.logs import hotpath
from proxyd.logs.writer import RequestLog

HEADERS = [
    (b"host", b"bench.local"),
    (b"user-agent", b"wrk/4.2.0 (bench)"),
    (b"accept", b"*/*"),
    (b"x-forwarded-for", b"192.0.2.44"),
]
TICKS = os.sysconf("SC_CLK_TCK")


async def _handler(scope: dict, receive, send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def _receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict) -> None:
    return None


def _scope(i: int) -> dict:
    return {
        "type": "http",
        "method": "GET",
        "path": f"/item/{i % 50}",
        "query_string": b"page=2",
        "headers": HEADERS,
        "client": ("127.0.0.1", 40000 + i % 1000),
    }


def _process_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _children_cpu() -> float:
    """CPU seconds used by this process's descendants, redis-server excluded."""
    return sum(cpu for cpu, _ in _children().values())


def _children() -> dict[int, tuple[float, int]]:
    """{pid: (CPU seconds, VmRSS kB)} of this process's descendants, redis-server excluded."""
    found = {}
    todo = [os.getpid()]
    seen = set()
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid in seen:
                    continue
                seen.add(kid)
                todo.append(kid)
                try:
                    stat = Path(f"/proc/{kid}/stat").read_text()
                except OSError:
                    continue
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                if name.startswith("redis-server"):
                    continue
                fields = stat[stat.rindex(")") + 2 :].split()
                rss = 0
                for line in Path(f"/proc/{kid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                found[kid] = ((int(fields[11]) + int(fields[12])) / TICKS, rss)
    return found


async def _drive(rate: int, seconds: float, call) -> float:
    """Run `call(i)` rate times a second in 10 ms bursts; return this process's CPU seconds."""
    burst = max(1, rate // 100)
    start_cpu = time.process_time()
    deadline = trio.current_time()
    for tick in range(int(seconds * 100)):
        for j in range(burst):
            await call(tick * burst + j)
        deadline += 0.01
        await trio.sleep_until(deadline)
    return time.process_time() - start_cpu


async def main(rate: int, seconds: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="logs-cpu-"))
    redis, port = start_redis(workdir / "redis")
    try:
        records = int(rate * seconds)
        settings = load_settings(
            environ={
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "TRUSTED_PROXIES": "127.0.0.1",
                "LOG_BUFFER_SIZE": str(records + 1),  # measure the work, not the drops
            },
            env_file=None,
        )
        request_log = RequestLog(settings, settings.redis_url)
        takes_client = "client" in inspect.signature(hotpath.observe).parameters

        async def logged(i: int) -> None:
            scope = _scope(i)
            if takes_client:
                await hotpath.observe(
                    request_log,
                    "bench.local",
                    _handler,
                    scope,
                    _receive,
                    _send,
                    client="192.0.2.44",
                )
            else:
                await hotpath.observe(request_log, "bench.local", _handler, scope, _receive, _send)

        async def plain(i: int) -> None:
            await _handler(_scope(i), _receive, _send)

        off = await _drive(rate, seconds, plain)
        # The request path alone: observe, the record, submit() into a buffer nobody drains.
        idle_log = RequestLog(
            load_settings(environ={"LOG_BUFFER_SIZE": str(records + 1)}, env_file=None), ""
        )
        request_log, kept = idle_log, request_log
        hot = await _drive(rate, seconds, logged)
        request_log = kept
        async with trio.open_nursery() as nursery:
            await nursery.start(request_log.run)
            await trio.sleep(0.5)  # the writer process (if any) has started
            children_before = _children_cpu()
            redis_before = _process_cpu(redis.proc.pid)
            start_cpu = time.process_time()
            on = await _drive(rate, seconds, logged)
            with trio.fail_after(60):
                while request_log.written + request_log.dropped < records:
                    await trio.sleep(0.05)
            on_total = time.process_time() - start_cpu
            children = _children_cpu() - children_before
            redis_cpu = _process_cpu(redis.proc.pid) - redis_before
            rss = [kb for _, kb in _children().values()]
            nursery.cancel_scope.cancel()
        per = 1e6 / records
        print(
            f"records: {records} at {rate}/s; written {request_log.written}, "
            f"dropped {request_log.dropped}"
        )
        print(f"serving process, logging off: {off * per:.1f} us/request (baseline)")
        print(
            f"serving process, hot path only: {(hot - off) * per:.1f} us/record "
            "(observe + RequestRecord + submit, nothing shipped or written)"
        )
        print(f"serving process, logging on:  {on * per:.1f} us/request while driving")
        print(
            f"serving process, logging cost: {(on_total - off) * per:.1f} us/record "
            f"(on, until all written, minus off)"
        )
        print(f"writer process(es): {children * per:.1f} us/record, RSS {rss} kB")
        print(f"redis-server: {redis_cpu * per:.1f} us/record")
    finally:
        redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=5000, help="requests a second")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each loop")
    args = parser.parse_args()
    trio.run(main, args.rate, args.seconds)
