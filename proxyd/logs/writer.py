"""RequestLog: the serving process's side of request logging. The request path calls `submit()`,
which appends the record to an in-memory list (bounded by LOG_BUFFER_SIZE: beyond it the record
is dropped and counted; requests never wait). A shipping task sends what gathered, every
FLUSH_INTERVAL, over the channel to the log-writer process (proxyd.logs.wire: plain tuples,
marshal, a few microseconds a record), which does all the Redis work (proxyd.logs.sink).

Written and dropped counts come back from the writer on the same channel, so `written`,
`dropped` and `queued` (read by /metrics and health) cover this process's records end to end.

With WORKERS > 1 the supervisor runs one writer for all workers and passes each worker its
channel end (PROXYD_LOG_FD); otherwise `run()` starts and supervises a writer of its own.
When `run()` is cancelled (proxyd stopping, after the listeners drained), it ships what is left
and closes its end: the writer writes everything and exits.
"""

from __future__ import annotations

import functools
import logging
import socket

import trio

from proxyd.config import Settings
from proxyd.logs import wire
from proxyd.logs.metrics import Metrics
from proxyd.logs.record import RequestRecord
from proxyd.logs.spawn import run_writer_process, stop_grace, writer_config

log = logging.getLogger("proxyd.logs.writer")

FLUSH_INTERVAL = 0.02
FINAL_FLUSH_TIMEOUT = 5.0
ROWS_PER_FRAME = 256


class RequestLog:
    """The request log of one serving process: buffer, counters, metrics, the shipping task."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.enabled = settings.request_logging
        self.metrics = Metrics()
        self.instance = settings.instance
        self.slow_ms = settings.log_slow_seconds * 1000
        self.trusted_proxies = settings.trusted_proxies
        self._limit = settings.log_buffer_size
        self._pending: list[tuple] = []
        self._gathered = trio.Event()
        self._in_flight = 0
        self._writer_queued = 0
        self._send_failed = False
        self.dropped = 0
        self.written = 0
        self.writer_pid: int | None = None

    # -- request path ----------------------------------------------------------------------------
    def submit(self, row: tuple) -> None:
        """Queue a record (a row in wire.ROW_FIELDS order; `to_row` makes one from a
        RequestRecord) for the writer; never blocks (a full buffer drops and counts it)."""
        pending = self._pending
        if len(pending) >= self._limit:
            self.dropped += 1
            return
        if not pending:
            self._gathered.set()
        pending.append(row)

    @property
    def queued(self) -> int:
        """Records of this process not yet written: here, in flight, and in the writer."""
        return len(self._pending) + self._in_flight + self._writer_queued

    # -- shipping task ---------------------------------------------------------------------------
    async def run(
        self,
        *,
        channel: socket.socket | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Ship records to the writer process forever. channel: this process's end of a channel
        to a writer someone else runs (default: the one the supervisor passed down, if any);
        without one, start and supervise a writer process here."""
        inherited = channel if channel is not None else _inherited_channel()
        writer_end = None
        try:
            async with trio.open_nursery() as nursery:
                if inherited is None:
                    serving, writer_end = wire.channel_pair()
                    await nursery.start(
                        functools.partial(
                            run_writer_process,
                            writer_config(self.settings),
                            self.redis_url,
                            [writer_end],
                            grace=stop_grace(self.settings),
                            on_start=self._writer_started,
                        )
                    )
                else:
                    serving = inherited
                sock = trio.socket.from_stdlib_socket(serving)
                nursery.start_soon(self._read_reports, sock)
                task_status.started()
                try:
                    await self._ship_forever(sock)
                finally:
                    with trio.CancelScope(shield=True):
                        with trio.move_on_after(FINAL_FLUSH_TIMEOUT):
                            await self._ship(sock)
                        if inherited is None:
                            sock.close()  # end-of-file: the writer writes what it has and exits
        finally:
            if writer_end is not None:
                writer_end.close()

    def _writer_started(self, pid: int) -> None:
        self.writer_pid = pid

    async def _ship_forever(self, sock: trio.socket.SocketType) -> None:
        while True:
            await self._gathered.wait()
            await trio.sleep(FLUSH_INTERVAL)
            self._gathered = trio.Event()
            await self._ship(sock)

    async def _ship(self, sock: trio.socket.SocketType) -> None:
        records, self._pending = self._pending, []
        if not records:
            return
        self._in_flight = len(records)
        try:
            for start in range(0, len(records), ROWS_PER_FRAME):
                rows = records[start : start + ROWS_PER_FRAME]
                for frame, count in wire.pack_records(self.instance, rows):
                    try:
                        await sock.send(frame)
                    except OSError as exc:
                        self.dropped += count
                        if not self._send_failed:
                            log.warning("request log: cannot reach the writer process (%s)", exc)
                        self._send_failed = True
                    else:
                        self._send_failed = False
                    self._in_flight -= count
        finally:
            self._in_flight = 0

    async def _read_reports(self, sock: trio.socket.SocketType) -> None:
        while True:
            frame = await sock.recv(256)
            if not frame:
                return
            report = wire.unpack_stats(frame)
            if report is not None:
                written, dropped, self._writer_queued = report
                self.written += written
                self.dropped += dropped


@functools.cache
def _inherited_channel():
    return wire.inherited_channel()


def to_row(r: RequestRecord) -> tuple:
    """The record as a plain tuple in wire.ROW_FIELDS order (times in integer microseconds)."""
    upstream = r.upstream_ms
    return (
        int(r.ts * 1_000_000),
        r.client_ip,
        r.hostname,
        r.method,
        r.path,
        r.query,
        r.status,
        r.bytes_in,
        r.bytes_out,
        int(r.duration_ms * 1000),
        None if upstream is None else int(upstream * 1000),
        r.user_agent,
        r.referer,
        r.protocol,
        r.user,
        r.client_id,
        r.auth_outcome,
        r.error,
    )
