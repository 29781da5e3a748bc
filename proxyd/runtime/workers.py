"""Worker processes: with WORKERS > 1, `proxyd serve` becomes a small supervisor that opens the
listening sockets once, starts the embedded redis-server if needed, and runs WORKERS full proxyd
processes (each its own trio tree) that inherit those sockets, so the kernel spreads connections
over all cores. Every worker consumes every event from Redis, so configuration changes reach all of
them; each has its own instance id (`{instance}-w{N}`) and consumer group.

A worker that dies is restarted with a growing delay. SIGINT/SIGTERM are passed to the workers,
which drain; the supervisor exits 0 once they have all stopped (or kills them after a grace time).

With REQUEST_LOGGING on, the supervisor also runs the one log-writer process (proxyd.logs.spawn)
and opens a channel per worker (PROXYD_LOG_FD). Once every worker has stopped it closes its
copies of the worker ends; the writer then writes what it holds and exits, before the embedded
Redis stops.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import socket
import subprocess
import sys

import trio

from proxyd.config import Settings
from proxyd.logs import wire
from proxyd.logs.spawn import run_writer_process, stop_grace, writer_config
from proxyd.store.embedded import run_embedded_redis

log = logging.getLogger("proxyd.workers")

FDS_ENV = "PROXYD_LISTEN_FDS"
STARTUP_GRACE = 15.0  # a worker failing this soon after its first start is a startup error
WORKER_ENV = "PROXYD_WORKER_INDEX"


class ListenError(RuntimeError):
    """Workers cannot be started (a socket cannot be opened, or a worker fails at startup)."""


def bind_problem(what: str, bind: str, setting: str, exc: OSError) -> str:
    """One sentence saying why a listening address could not be opened."""
    reason = {
        errno.EADDRINUSE: "is already in use",
        errno.EACCES: "needs root (ports below 1024) or CAP_NET_BIND_SERVICE",
    }.get(exc.errno, f"cannot be opened ({exc.strerror})")
    return f"the {what} address {bind} {reason}; set {setting} to another port."


def listen_socket(what: str, host: str, port: int, setting: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(bind_problem(what, f"{host}:{port}", setting, exc)) from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@functools.cache
def inherited_sockets() -> dict[str, socket.socket]:
    """In a worker: the listening sockets the supervisor passed down, by name."""
    spec = os.environ.get(FDS_ENV, "")
    sockets = {}
    for item in filter(None, spec.split(",")):
        name, _, fd = item.partition(":")
        sockets[name] = socket.socket(fileno=int(fd))
    return sockets


def is_worker() -> bool:
    return WORKER_ENV in os.environ


async def supervise_workers(settings: Settings) -> None:
    async with trio.open_nursery() as root:
        redis_url = settings.redis_url
        if not redis_url:
            redis_url = await root.start(run_embedded_redis, settings.data_path)
        sockets = {
            "api": listen_socket("API", "127.0.0.1", settings.api_port, "API_PORT"),
            "http": listen_socket("HTTP", settings.server_host, settings.http_port, "HTTP_PORT"),
            "https": listen_socket(
                "HTTPS", settings.server_host, settings.https_port, "HTTPS_PORT"
            ),  # TLS capability: the workers serve HTTPS on it (proxyd.tls)
        }
        spec = ",".join(f"{name}:{sock.fileno()}" for name, sock in sockets.items())
        stopping = trio.Event()
        processes: dict[int, trio.Process] = {}
        log.info(
            "starting %d workers: http on %s:%s, API on 127.0.0.1:%s",
            settings.workers,
            settings.server_host,
            sockets["http"].getsockname()[1],
            sockets["api"].getsockname()[1],
        )
        logging_on = settings.request_logging
        channels = [wire.channel_pair() for _ in range(settings.workers)] if logging_on else []
        async with trio.open_nursery() as log_writer:
            if channels:
                log_writer.start_soon(
                    functools.partial(
                        run_writer_process,
                        writer_config(settings),
                        redis_url,
                        [end for _, end in channels],
                        grace=1.0,
                    )
                )
            async with trio.open_nursery() as workers:
                for index in range(settings.workers):
                    env = {
                        **os.environ,
                        "REDIS_URL": redis_url,
                        FDS_ENV: spec,
                        WORKER_ENV: str(index),
                        "PROXYD_INSTANCE_ID": f"{settings.instance}-w{index}",
                    }
                    fds = [sock.fileno() for sock in sockets.values()]
                    if channels:
                        env[wire.FD_ENV] = str(channels[index][0].fileno())
                        fds.append(channels[index][0].fileno())
                    workers.start_soon(_run_worker, index, env, fds, processes, stopping)
                workers.start_soon(_forward_signals, processes, stopping, settings.shutdown_timeout)
            for serving, _ in channels:
                serving.close()  # end-of-file for the log writer: it writes the rest and exits
            log_writer.cancel_scope.deadline = trio.current_time() + stop_grace(settings)
        for sock in sockets.values():
            sock.close()
        for _, end in channels:
            end.close()
        root.cancel_scope.cancel()


async def _run_worker(index, env, fds, processes, stopping: trio.Event) -> None:
    delay = 0.5
    first = True
    while not stopping.is_set():
        started = trio.current_time()
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "proxyd", "serve"],
            env=env,
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        processes[index] = process
        try:
            code = await process.wait()
        finally:
            if process.returncode is None:  # cancelled: make sure it does not outlive us
                process.kill()
        if stopping.is_set():
            return
        if first and code == 1 and trio.current_time() - started < STARTUP_GRACE:
            # Exit code 1 is a startup error (it said why on stderr): restarting would repeat it.
            raise ListenError(f"worker {index} could not start (exit code {code}).")
        first = False
        log.error("worker %d exited with code %s; restarting in %.1fs", index, code, delay)
        await trio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def _forward_signals(processes, stopping: trio.Event, grace: float) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s: stopping workers", signal.Signals(signum).name)
            stopping.set()
            for process in processes.values():
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            with trio.move_on_after(grace + 5):
                for process in processes.values():
                    await process.wait()
            for process in processes.values():
                if process.returncode is None:
                    log.warning("worker pid %s did not stop in time; killing it", process.pid)
                    process.kill()
            return
