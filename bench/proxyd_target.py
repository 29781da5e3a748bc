"""Run proxyd (with its own throwaway redis-server) and drive it through the GraphQL API."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.procs import LOOPBACK, ManagedProcess, free_port, wait_for_http_200, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[1]

CREATE_PROXY = (
    "mutation($h:String!,$u:String!){ createProxy(input:{hostname:$h, targetUrl:$u, "
    "enableHttps:false}) { hostname } }"
)


CREATE_PROTECTED_PROXY = (
    "mutation($h:String!,$u:String!){ createProxy(input:{hostname:$h, targetUrl:$u, "
    "enableHttps:false, authEnabled:true}) { hostname } }"
)


CREATE_HTTPS_PROXY = (
    "mutation($h:String!,$u:String!){ createProxy(input:{hostname:$h, targetUrl:$u, "
    "enableHttps:true}) { hostname } }"
)


def start_redis(workdir: Path) -> tuple[ManagedProcess, int]:
    """A throwaway redis-server on 127.0.0.1 with persistence off; returns it and its port."""
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(workdir),
        "--logfile",
        "",
    ]
    proc = ManagedProcess("redis", argv, log_dir=workdir, cwd=workdir)
    try:
        wait_for_port(port, proc)
    except BaseException:
        proc.stop()
        raise
    return proc, port


@dataclass
class Proxyd:
    """A running proxyd: its process, ports and admin token."""

    proc: ManagedProcess
    env: dict[str, str]
    http_port: int
    api_port: int
    token: str = ""

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def issue_admin_token(self) -> str:
        """Run `python -m proxyd token issue --scope admin` with proxyd's environment."""
        done = subprocess.run(
            [sys.executable, "-m", "proxyd", "token", "issue", "--scope", "admin"],
            env=self.env,
            cwd=self.env["PROXYD_DATA_DIR"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            raise RuntimeError(
                f"proxyd token issue failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        self.token = token.splitlines()[-1].strip()
        return self.token

    def graphql(self, client: httpx.Client, query: str, variables: dict) -> dict:
        """POST a GraphQL operation with the admin token; raise on HTTP or GraphQL errors."""
        response = client.post(
            f"{self.api_url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code != 200 or payload.get("errors") or "data" not in payload:
            raise RuntimeError(
                f"GraphQL call failed: HTTP {response.status_code} {response.text[:1000]}"
            )
        return payload["data"]

    def create_protected_proxy(self, hostname: str, target_url: str) -> str:
        """An OAuth-protected proxy (authEnabled) and a bearer token for it; returns the token."""
        with httpx.Client(timeout=30) as client:
            data = self.graphql(client, CREATE_PROTECTED_PROXY, {"h": hostname, "u": target_url})
        if (data.get("createProxy") or {}).get("hostname") != hostname:
            raise RuntimeError(f"createProxy returned {data!r}")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "proxyd",
                "token",
                "issue",
                "--scope",
                "user",
                "--subject",
                "bench",
                "--audience",
                f"http://{hostname}",
            ],
            env=self.env,
            cwd=self.env["PROXYD_DATA_DIR"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"proxyd token issue --audience failed:\n{done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    def create_https_proxy(self, hostname: str, target_url: str) -> None:
        """A proxy with enableHttps (served with its self-signed certificate in the bench)."""
        with httpx.Client(timeout=30) as client:
            data = self.graphql(client, CREATE_HTTPS_PROXY, {"h": hostname, "u": target_url})
        if (data.get("createProxy") or {}).get("hostname") != hostname:
            raise RuntimeError(f"createProxy returned {data!r}")

    def create_proxy(self, client: httpx.Client, hostname: str, target_url: str) -> None:
        """createProxy(hostname, targetUrl, enableHttps: false)."""
        data = self.graphql(client, CREATE_PROXY, {"h": hostname, "u": target_url})
        if (data.get("createProxy") or {}).get("hostname") != hostname:
            raise RuntimeError(f"createProxy returned {data!r}")


def start_proxyd(
    workdir: Path, redis_port: int, log_level: str = "WARNING", **settings: str
) -> Proxyd:
    """Start `python -m proxyd serve` on free loopback ports and wait for /health to answer 200.

    `settings` are extra environment settings, e.g. REQUEST_LOGGING="false"."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    http_port, api_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        REDIS_URL=f"redis://{LOOPBACK}:{redis_port}/0",
        SERVER_HOST=LOOPBACK,
        HTTP_PORT=str(http_port),
        HTTPS_PORT="0",
        API_PORT=str(api_port),
        PROXYD_DATA_DIR=str(data_dir),
        LOG_LEVEL=log_level,
        PYTHONUNBUFFERED="1",
        # Like the bench's nginx (keepalive_requests 1000000): the load generators keep their
        # connections, and h2load, which does not reconnect after a GOAWAY, keeps measuring.
        EDGE_MAX_REQUESTS_PER_CONNECTION="1000000",
    )
    env.update(settings)
    # proxyd is normally installed (nox installs it with -e .); this also covers a bare checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # cwd = the data dir, so a developer's ./.env cannot change the benchmark's settings.
    proc = ManagedProcess(
        "proxyd", [sys.executable, "-m", "proxyd", "serve"], log_dir=workdir, env=env, cwd=data_dir
    )
    proxyd = Proxyd(proc=proc, env=env, http_port=http_port, api_port=api_port)
    try:
        wait_for_http_200(f"{proxyd.api_url}/health", proc, timeout=30.0)
        wait_for_port(http_port, proc, timeout=10.0)
    except BaseException:
        proc.stop()  # the exception already carries proxyd's stderr
        raise
    return proxyd


def http_status(port: int, host: str, path: str = "/", timeout: float = 2.0) -> int:
    """One GET over a fresh loopback connection; the status code, or 0 if there was none."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(request)
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return 0
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return 0
    try:
        return int(parts[1])
    except ValueError:
        return 0


@dataclass
class CreateTiming:
    """Milliseconds from sending createProxy to its answer, and to the first 200 through it."""

    mutation_ms: float
    first_200_ms: float
    polls: int


def time_create_to_first_200(
    proxyd: Proxyd, target_url: str, hostname: str, timeout: float = 30.0
) -> CreateTiming:
    """Create a proxy for `hostname`, then poll it as fast as possible until it answers 200."""
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        # Warm the API connection so the timing does not include a TCP handshake.
        client.get(f"{proxyd.api_url}/health")
        start = time.perf_counter()
        proxyd.create_proxy(client, hostname, target_url)
        mutation_done = time.perf_counter()
    polls = 0
    deadline = mutation_done + timeout
    while True:
        polls += 1
        status = http_status(proxyd.http_port, hostname)
        now = time.perf_counter()
        if status == 200:
            return CreateTiming(
                mutation_ms=(mutation_done - start) * 1000,
                first_200_ms=(now - start) * 1000,
                polls=polls,
            )
        if now > deadline:
            raise TimeoutError(
                f"{hostname} did not answer 200 within {timeout:.0f} s of createProxy "
                f"(last status {status}, {polls} polls)"
            )


def median_create_timing(timings: list[CreateTiming]) -> CreateTiming:
    """The median of each field over several measurements."""
    return CreateTiming(
        mutation_ms=statistics.median(t.mutation_ms for t in timings),
        first_200_ms=statistics.median(t.first_200_ms for t in timings),
        polls=int(statistics.median(t.polls for t in timings)),
    )
