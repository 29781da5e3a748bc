"""Starting and supervising the log-writer process (`python -m proxyd.logs.sink`).

Who runs it: with WORKERS=1 the serving process itself (RequestLog.run); with WORKERS > 1 the
worker supervisor, which opens one channel per worker, passes each worker its end
(PROXYD_LOG_FD) and gives the writer all the other ends. Either way the parent keeps its copy of
every writer end, so records waiting in a channel survive a writer restart.

The writer exits 0 only once every channel has reached end-of-file (all serving processes and
the supervisor closed their ends: proxyd is stopping), after writing what it still holds. Any
other exit is a crash or a signal: it is restarted with a growing delay. When the task running it
is cancelled, it still gets `grace` seconds to finish before it is killed.

Imported by the worker supervisor: keep it light (no coredis, no application modules).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import trio

log = logging.getLogger("proxyd.logs.writer")

CONFIG_ENV = "PROXYD_LOG_WRITER"
FDS_ENV = "PROXYD_LOG_WRITER_FDS"
# SIGTERM and SIGINT are ignored from the first line, before the (slower) imports: see sink.py.
BOOTSTRAP = (
    "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "import sys; from proxyd.logs.sink import main; sys.exit(main())"
)
STABLE_AFTER = 60.0  # a writer that ran this long restarts at the shortest delay again
WRITE_TIMEOUT = 5.0  # the writer's bound on one Redis write


def writer_config(settings: Any) -> dict[str, Any]:
    """The settings the writer process needs (passed as JSON in its environment)."""
    return {
        "retention_hours": settings.log_retention_hours,
        "slow_seconds": settings.log_slow_seconds,
        "stream_maxlen": settings.log_stream_maxlen,
        "buffer_size": settings.log_buffer_size,
        "batch_interval": settings.log_batch_interval,
        "log_level": settings.log_level,
        "log_format": settings.log_format,
    }


def stop_grace(settings: Any) -> float:
    """Seconds a stopping writer gets to write what it holds before it is killed."""
    return settings.log_batch_interval + WRITE_TIMEOUT + 2.0


async def run_writer_process(
    config: dict[str, Any],
    redis_url: str,
    ends: list[socket.socket],
    *,
    grace: float,
    on_start: Callable[[int], None] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the writer on the channel ends `ends` until it exits 0; restart it when it dies."""
    fds = [end.fileno() for end in ends]
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        CONFIG_ENV: json.dumps(config),
        FDS_ENV: ",".join(map(str, fds)),
    }
    env.pop("PROXYD_LOG_FD", None)
    delay = 0.5
    first = True
    while True:
        started = trio.current_time()
        process = await _start(env, fds)
        if on_start is not None:
            on_start(process.pid)
        if first:
            task_status.started(process.pid)
            first = False
        try:
            code = await process.wait()
        finally:
            if process.returncode is None:  # cancelled: let it finish, within bounds
                await _finish(process, grace)
        if code == 0:
            return
        if trio.current_time() - started > STABLE_AFTER:
            delay = 0.5
        log.error("request-log writer exited with code %s; restarting in %.1fs", code, delay)
        try:
            await trio.sleep(delay)
        except trio.Cancelled:
            # Stopping while no writer runs: one more writes what waits in the channels.
            with trio.CancelScope(shield=True):
                await _finish(await _start(env, fds), grace)
            raise
        delay = min(delay * 2, 10.0)


async def _start(env: dict[str, str], fds: list[int]) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-c", BOOTSTRAP, "proxyd.logs.sink"],  # the last: a name for ps
        env=env,
        pass_fds=fds,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C must not cut it before the workers
    )


async def _finish(process: trio.Process, grace: float) -> None:
    """Wait up to grace seconds for a writer whose channels are closing, then kill it."""
    with trio.CancelScope(shield=True):
        with trio.move_on_after(grace):
            await process.wait()
        if process.returncode is None:
            log.warning("request-log writer did not stop in time; killing it")
            process.kill()
            await process.wait()
