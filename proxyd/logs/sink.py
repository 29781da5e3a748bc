"""The log-writer process (`python -m proxyd.logs.sink`, started by proxyd.logs.spawn): it reads
request records from the serving processes' channels (proxyd.logs.wire) into one bounded queue
and writes them to Redis in batches (proxyd.logs.batch), so the serving processes never spend CPU
on Redis. Rows are checked and their secrets masked here (proxyd.logs.masking), before anything is
stored.

- Every LOG_BATCH_INTERVAL seconds after the first waiting record, up to MAX_BATCH records are
  written in one round trip. A batch that cannot be written (Redis down, or slower than
  WRITE_TIMEOUT) is dropped and counted; the writer backs off and resumes by itself.
- The queue holds LOG_BUFFER_SIZE records per channel; beyond that records are dropped and counted.
- Written and dropped counts go back to the channel they came from, every REPORT_INTERVAL, so
  each serving process's /metrics and health show its own records.
- It exits 0 once every channel has reached end-of-file, after writing what it holds (a clean
  proxyd stop loses nothing). It ignores SIGTERM and SIGINT: a service manager that signals the
  whole group (systemd's KillMode=control-group) must not stop it before the serving processes
  have drained into it. End-of-file comes however they end, even when they are killed.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

import coredis
import trio

from proxyd.logs import wire
from proxyd.logs.applog import TRACE, StructuredFormatter
from proxyd.logs.batch import BatchWriter
from proxyd.logs.record import stored_row
from proxyd.logs.spawn import CONFIG_ENV, FDS_ENV, WRITE_TIMEOUT
from proxyd.store.redis import connect, describe

log = logging.getLogger("proxyd.logs.writer")

MAX_BATCH = 2000
MAX_BACKOFF = 5.0
REPORT_INTERVAL = 0.05


class Channel:
    """One serving process's channel and the counts not yet reported to it."""

    def __init__(self, index: int, raw: socket.socket) -> None:
        self.index = index
        self.raw = raw
        self.sock = trio.socket.from_stdlib_socket(raw)
        self.written = 0
        self.dropped = 0
        self.queued = 0
        self.reported_queued = 0

    def report(self) -> None:
        """Send the counts since the last report, without ever waiting."""
        if not (self.written or self.dropped or self.queued != self.reported_queued):
            return
        try:
            self.raw.send(wire.pack_stats(self.written, self.dropped, self.queued))
        except BlockingIOError:
            return  # the serving process is busy: the counts go with the next report
        except OSError:
            pass  # that serving process is gone
        self.written = self.dropped = 0
        self.reported_queued = self.queued


class Sink:
    def __init__(self, config: dict[str, Any], redis_url: str, ends: list[socket.socket]) -> None:
        self.redis_url = redis_url
        self.channels = [Channel(i, end) for i, end in enumerate(ends)]
        self.limit = max(1, int(config["buffer_size"])) * len(ends)
        self.batch_interval = float(config["batch_interval"])
        self.writer = BatchWriter(
            retention_hours=float(config["retention_hours"]),
            slow_seconds=float(config["slow_seconds"]),
            stream_maxlen=int(config["stream_maxlen"]),
        )
        # Chunks of stored rows, each with the channel it came from; `waiting` rows in all.
        self.queue: collections.deque[tuple[Channel, list[tuple]]] = collections.deque()
        self.waiting = 0
        self.arrived = trio.Event()
        self.closed = trio.Event()  # every channel at end-of-file
        self.redis_ok = True
        self.dropped_total = 0
        self.bad_frames = 0

    # -- reading ------------------------------------------------------------------------------
    async def read_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for channel in self.channels:
                nursery.start_soon(self.read, channel)
        self.closed.set()
        self.arrived.set()

    async def read(self, channel: Channel) -> None:
        while True:
            try:
                frame = await channel.sock.recv(wire.MAX_FRAME + 1)
            except OSError:
                frame = b""
            if not frame:
                return
            try:
                instance, rows = wire.unpack_records(frame)
            except ValueError as exc:
                self.bad_frames += 1
                if self.bad_frames == 1:
                    log.warning("request log: ignoring a malformed frame (%s)", exc)
                continue
            self.take(channel, instance, rows)
            self.arrived.set()

    def take(self, channel: Channel, instance: str, rows: list) -> None:
        room = self.limit - self.waiting
        kept = []
        for row in rows:
            if len(kept) >= room or not wire.valid_row(row):
                channel.dropped += 1
                continue
            kept.append(stored_row(row, instance))
        if kept:
            self.queue.append((channel, kept))
            self.waiting += len(kept)
            channel.queued += len(kept)

    # -- writing ------------------------------------------------------------------------------
    async def write_all(self, redis: coredis.Redis) -> None:
        """Write batches until every channel is closed and the queue is empty."""
        delay = 0.0
        while True:
            if not self.queue:
                if self.closed.is_set():
                    return
                self.arrived = trio.Event()
                await self.arrived.wait()
                continue
            if self.waiting < MAX_BATCH and not self.closed.is_set():
                with trio.move_on_after(self.batch_interval):
                    await self.closed.wait()
            taken = self.next_batch()
            rows = [row for _, chunk in taken for row in chunk]
            ok = await self.write(redis, rows)
            for channel, chunk in taken:
                if ok:
                    channel.written += len(chunk)
                else:
                    channel.dropped += len(chunk)
            if ok:
                delay = 0.0
                continue
            self.dropped_total += len(rows)
            if self.closed.is_set():
                self.drop_queue()  # stopping with Redis unavailable: do not wait for it
                return
            delay = min(max(delay * 2, 0.25), MAX_BACKOFF)
            with trio.move_on_after(delay):
                await self.closed.wait()

    def next_batch(self) -> list[tuple[Channel, list[tuple]]]:
        """Up to MAX_BATCH rows from the front of the queue (a chunk may be split)."""
        taken: list[tuple[Channel, list[tuple]]] = []
        room = MAX_BATCH
        while self.queue and room:
            channel, chunk = self.queue.popleft()
            if len(chunk) > room:
                self.queue.appendleft((channel, chunk[room:]))
                chunk = chunk[:room]
            taken.append((channel, chunk))
            room -= len(chunk)
            self.waiting -= len(chunk)
            channel.queued -= len(chunk)
        return taken

    def drop_queue(self) -> None:
        for channel, chunk in self.queue:
            channel.dropped += len(chunk)
            channel.queued -= len(chunk)
        self.dropped_total += self.waiting
        self.waiting = 0
        self.queue.clear()

    async def write(self, redis: coredis.Redis, batch: list[tuple]) -> bool:
        error = ""
        with trio.move_on_after(WRITE_TIMEOUT) as timer:
            try:
                await self.writer.write_batch(redis, batch)
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
            log.info(
                "request log: Redis answers again; %d records dropped so far", self.dropped_total
            )
        self.redis_ok = True
        return True

    # -- reporting ----------------------------------------------------------------------------
    async def report_forever(self) -> None:
        while True:
            await trio.sleep(REPORT_INTERVAL)
            self.report()

    def report(self) -> None:
        for channel in self.channels:
            channel.report()

    async def run(self) -> int:
        redis = connect(self.redis_url)
        async with redis, trio.open_nursery() as nursery:
            nursery.start_soon(self.read_all)
            nursery.start_soon(self.report_forever)
            await self.write_all(redis)
            self.report()
            nursery.cancel_scope.cancel()
        return 0


def _configure_logging(level: str, fmt: str) -> None:
    logging.addLevelName(TRACE, "TRACE")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructuredFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(TRACE if level == "TRACE" else getattr(logging, level, logging.INFO))
    logging.getLogger("coredis").setLevel(logging.WARNING)


def main() -> int:
    try:
        config = json.loads(os.environ[CONFIG_ENV])
        fds = [int(fd) for fd in os.environ[FDS_ENV].split(",") if fd]
        redis_url = os.environ["REDIS_URL"]
    except (KeyError, ValueError) as exc:
        print(f"proxyd log writer: started without its settings ({exc}).", file=sys.stderr)
        return 1
    _configure_logging(str(config.get("log_level", "INFO")), str(config.get("log_format", "text")))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ends = [socket.socket(fileno=fd) for fd in fds]
    log.debug("request-log writer started on %d channel(s)", len(ends))
    return trio.run(Sink(config, redis_url, ends).run)


if __name__ == "__main__":
    sys.exit(main())
