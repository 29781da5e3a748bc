"""The embedded redis-server: started, watched and restarted by proxyd when REDIS_URL is unset.

It listens only on a unix socket under PROXYD_DATA_DIR/redis (no TCP port) and keeps an
append-only file there, so configuration survives restarts of proxyd and of the machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

import trio

log = logging.getLogger("proxyd.store.embedded")

INSTALL_HINT = (
    "redis-server is not installed: install it (Debian/Ubuntu: `apt-get install redis-server`, "
    "macOS: `brew install redis`) or set REDIS_URL to an existing Redis."
)


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis cannot be started; the message says what to do."""


def socket_path(data_path: Path) -> Path:
    return data_path / "redis" / "redis.sock"


def socket_url(data_path: Path) -> str:
    return f"unix://{socket_path(data_path)}"


def _command(binary: str, data_path: Path) -> list[str]:
    redis_dir = data_path / "redis"
    return [
        binary,
        "--port",
        "0",
        "--unixsocket",
        str(socket_path(data_path)),
        "--unixsocketperm",
        "700",
        "--dir",
        str(redis_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        str(redis_dir / "redis.log"),
    ]


async def _resp(url: str, *args: str, timeout: float = 1.0) -> bytes:
    """Send one command to the redis-server on the unix socket of url; its raw reply.

    A plain RESP exchange (no client library), so the worker supervisor, which runs this, does
    not import the Redis client. Raises OSError or trio.TooSlowError when there is no answer.
    """
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with trio.fail_after(timeout):
        stream = await trio.open_unix_socket(url.removeprefix("unix://"))
        async with stream:
            await stream.send_all(payload.encode())
            reply = b""
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return reply
                reply += data
                if reply.startswith(b"$"):
                    size, _, rest = reply[1:].partition(b"\r\n")
                    if int(size) < 0 or len(rest) >= int(size) + 2:
                        return reply
                elif reply.endswith(b"\r\n"):
                    return reply


async def _ping(url: str) -> bool:
    try:
        return (await _resp(url, "PING")).startswith(b"+PONG")
    except (OSError, trio.TooSlowError, ValueError):
        return False


async def _shut_down_orphan(url: str) -> bool:
    """Stop a redis-server on our socket whose proxyd died (its parent is now init): it saves
    its append-only file on SHUTDOWN, and we start a supervised one on the same data."""
    try:
        info = (await _resp(url, "INFO", "server", timeout=5)).decode("latin-1")
        pid = int(info.split("process_id:", 1)[1].split("\r\n", 1)[0])
        stat = await trio.Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent != 1:
            return False  # a live proxyd owns it
        with contextlib.suppress(OSError, trio.TooSlowError):
            await _resp(url, "SHUTDOWN", timeout=5)
    except (OSError, trio.TooSlowError, IndexError, ValueError):
        return False
    with trio.move_on_after(5):
        while await _ping(url):
            await trio.sleep(0.05)
    return True


async def _wait_ready(url: str, process: trio.Process, timeout: float = 10.0) -> None:
    with trio.move_on_after(timeout):
        while process.returncode is None:
            if await _ping(url):
                return
            await trio.sleep(0.05)
    raise EmbeddedRedisError(
        f"the embedded redis-server did not become ready; see {Path(url[7:]).parent}/redis.log."
    )


async def run_embedded_redis(data_path: Path, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run redis-server until cancelled; report its URL through task_status once it answers.

    If it exits unexpectedly it is restarted with a growing delay (at most 10 s).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise EmbeddedRedisError(INSTALL_HINT)
    redis_dir = data_path / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = socket_url(data_path)
    sock = socket_path(data_path)
    if sock.exists():
        if await _ping(url) and await _shut_down_orphan(url):
            log.warning("stopped an orphaned embedded redis-server left by a proxyd that died")
        if await _ping(url):
            raise EmbeddedRedisError(
                f"another redis-server already serves {sock} (is another proxyd using "
                f"PROXYD_DATA_DIR={data_path}?). Stop it, or set REDIS_URL={url} to share it."
            )
        sock.unlink(missing_ok=True)
    delay = 0.5
    started = False
    while True:
        # A new session keeps a terminal's Ctrl-C away from redis-server: proxyd stops it itself
        # after its own tasks have drained, so nothing is lost on the way down.
        process = await trio.lowlevel.open_process(
            _command(binary, data_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            await _wait_ready(url, process)
            log.info("embedded redis-server ready at %s (pid %s)", sock, process.pid)
            if not started:
                task_status.started(url)
                started = True
            delay = 0.5
            code = await process.wait()
            log.error("embedded redis-server exited with code %s; restarting in %.1fs", code, delay)
        finally:
            if process.returncode is None:
                with trio.CancelScope(shield=True):
                    process.send_signal(signal.SIGTERM)  # redis flushes the AOF on SIGTERM
                    with trio.move_on_after(5):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                    log.info("embedded redis-server stopped")
        if not started:
            raise EmbeddedRedisError(f"redis-server failed to start; see {redis_dir}/redis.log.")
        await trio.sleep(delay)
        delay = min(delay * 2, 10.0)
        if sock.exists():
            os.unlink(sock)
