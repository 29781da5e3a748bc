"""Start, watch and reliably stop the daemons a benchmark run needs (each in its own group)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

LOOPBACK = "127.0.0.1"


_given: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never one given before in
    this run (the kernel may hand the same port to two calls in a row)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port


class ManagedProcess:
    """A child started in a new session, so the whole process group can be killed at the end.

    stdout and stderr go to files under `log_dir` (never to pipes that could fill up).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self._stdout: IO[bytes] = open(self.stdout_path, "wb")  # noqa: SIM115
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        """True while the main process has not exited."""
        return self.proc.poll() is None

    def check_alive(self) -> None:
        """Raise RuntimeError with the tail of stderr when the process has exited."""
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with code {self.proc.returncode}:\n{self.stderr_tail()}"
            )

    def stderr_tail(self, max_chars: int = 4000) -> str:
        """The last `max_chars` characters the process wrote to stderr."""
        self._stderr.flush()
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-max_chars:]

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `timeout` seconds."""
        try:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            # Children (nginx workers, anything proxyd spawned) may outlive the main process.
            self._signal_group(signal.SIGKILL)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"warning: {self.name} (pid {self.pid}) did not exit after SIGKILL")
        finally:
            self._stdout.close()
            self._stderr.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        # start_new_session=True made the child the leader of a group whose id is its pid.
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_for_port(port: int, proc: ManagedProcess, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{proc.name} did not listen on port {port} within {timeout:.0f} s:\n"
                f"{proc.stderr_tail()}"
            )
        time.sleep(0.05)


def wait_for_http_200(
    url: str, proc: ManagedProcess, timeout: float = 30.0, headers: Mapping[str, str] | None = None
) -> None:
    """Wait until GET `url` answers 200; raise with the process's stderr on timeout or exit."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            proc.check_alive()
            try:
                response = client.get(url, headers=dict(headers or {}))
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{url} did not answer 200 within {timeout:.0f} s (last: {last}).\n"
                    f"{proc.name} stderr:\n{proc.stderr_tail()}"
                )
            time.sleep(0.1)
