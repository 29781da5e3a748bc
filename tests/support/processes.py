"""Starting real redis-server and `proxyd serve` processes for tests, and talking to them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now and that this test process has not handed out
    before: two calls in a row can otherwise get the same port back from the kernel (a proxyd
    given one port for both HTTP_PORT and API_PORT then fails to start)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port that was not handed out already")


def redis_command(port: int, *args: str) -> bytes:
    """Send one command to a Redis on 127.0.0.1:port (RESP), return the raw reply."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload.encode())
        return sock.recv(65536)


class RedisServer:
    """A throw-away redis-server on a free loopback port (append-only when asked, so that a
    restart on the same port keeps the data)."""

    def __init__(self, workdir: Path, appendonly: bool = False) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.workdir = workdir
        self.appendonly = appendonly
        workdir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        persistence = (
            ("--appendonly", "yes", "--appendfsync", "always")
            if self.appendonly
            else (
                "--appendonly",
                "no",
            )
        )
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *persistence,
                *("--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis_command(self.port, "PING").startswith(b"+PONG"):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        redis_command(self.port, "FLUSHALL")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class ProxydProcess:
    """`python -m proxyd serve` as a child process with its own ports and data directory."""

    def __init__(self, data_dir: Path, redis_url: str | None, **env: str) -> None:
        self.data_dir = data_dir
        self.http_port = int(env.pop("HTTP_PORT", 0)) or free_port()
        self.api_port = int(env.pop("API_PORT", 0)) or free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PROXYD_", "REDIS_"))},
            "PROXYD_DATA_DIR": str(data_dir),
            "HTTP_PORT": str(self.http_port),
            "HTTPS_PORT": "0",
            # Never reach a real CA from tests: orders fail fast against a closed loopback port.
            "ACME_DIRECTORY_URL": "https://127.0.0.1:9/directory",
            "ACME_STAGING_URL": "https://127.0.0.1:9/directory",
            "API_PORT": str(self.api_port),
            "LOG_LEVEL": "DEBUG",
            "WORKERS": "1",
            "SHUTDOWN_TIMEOUT": "2",
            "RECONCILE_INTERVAL": "30",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.log_path = data_dir / "proxyd.log"
        self.process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> ProxydProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "proxyd", "serve"],
                env=self.env,
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"proxyd exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"proxyd did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(
        self, *args: str, env: dict | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess:
        """Run `python -m proxyd ARGS` with this instance's environment."""
        return subprocess.run(  # noqa: PLW1510 - callers check the exit code
            [sys.executable, "-m", "proxyd", *args],
            env={**self.env, **(env or {})},
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def token(self, scope: str = "admin", subject: str = "tester") -> str:
        result = self.cli("token", "issue", "--scope", scope, "--subject", subject)
        if result.returncode != 0:
            raise RuntimeError(f"token issue failed: {result.stderr}")
        return result.stdout.strip()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
