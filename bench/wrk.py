"""Run wrk (and optionally h2load) and parse their text output into numbers."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in (\d+(?:\.\d+)?)(us|ms|s|m|h)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass
class LoadResult:
    """Numbers from one load-generator run. Latencies are in milliseconds."""

    requests_per_sec: float
    p50_ms: float | None
    p99_ms: float | None
    total_requests: int = 0
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    raw: str = ""

    def summary(self) -> str:
        """One line for progress output."""
        p50 = "-" if self.p50_ms is None else f"{self.p50_ms:.3f} ms"
        p99 = "-" if self.p99_ms is None else f"{self.p99_ms:.3f} ms"
        return (
            f"{self.requests_per_sec:,.0f} req/s, p50 {p50}, p99 {p99}, errors {self.error_count}"
        )

    @property
    def error_count(self) -> int:
        """Non-2xx/3xx answers plus socket errors (connect, read, write, timeout)."""
        return self.non_2xx + sum(self.socket_errors.values())


def to_ms(value: float, unit: str) -> float:
    """Convert a wrk duration (`us`, `ms`, `s`, `m`, `h`) to milliseconds."""
    return value * _TIME_UNITS_MS[unit]


def parse_wrk(output: str) -> LoadResult:
    """Parse `wrk --latency` output: Requests/sec, the 50% and 99% latency, errors."""
    rps = _RPS.search(output)
    if not rps:
        raise ValueError(f"no Requests/sec line in wrk output:\n{output}")
    percentiles = {
        float(m.group(1)): to_ms(float(m.group(2)), m.group(3))
        for m in _PERCENTILE.finditer(output)
    }
    total = _TOTAL.search(output)
    non_2xx = _NON_2XX.search(output)
    sock = _SOCKET_ERRORS.search(output)
    socket_errors = {}
    if sock:
        socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)
        )
    return LoadResult(
        requests_per_sec=float(rps.group(1)),
        p50_ms=percentiles.get(50.0),
        p99_ms=percentiles.get(99.0),
        total_requests=int(total.group(1)) if total else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
        raw=output,
    )


def wrk_argv(
    url: str, duration: int, connections: int, threads: int, headers: dict[str, str]
) -> list[str]:
    """The wrk command line for one run."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    return argv


def run_wrk(
    url: str,
    duration: int,
    connections: int = 10,
    threads: int = 1,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Run wrk against `url` (must be on 127.0.0.1) and parse its output."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk not found: apt-get install -y wrk")
    argv = wrk_argv(url, duration, connections, threads, headers or {})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return parse_wrk(done.stdout)


_H2_RPS = re.compile(r"finished in [\d.]+\w+, (\d+(?:\.\d+)?) req/s")
_H2_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored"
)
_H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_H2_REQ_TIME = re.compile(
    r"time for request:\s+(\d+(?:\.\d+)?)(us|ms|s)\s+(\d+(?:\.\d+)?)(us|ms|s)\s+"
    r"(\d+(?:\.\d+)?)(us|ms|s)"
)


def h2load_available() -> bool:
    """True when h2load (Debian package nghttp2-client) is on PATH."""
    return shutil.which("h2load") is not None


def parse_h2load(output: str) -> LoadResult:
    """Parse h2load output: req/s and errors; p50/p99 are not printed, the mean goes in p50."""
    rps = _H2_RPS.search(output)
    if not rps:
        raise ValueError(f"no 'finished in ... req/s' line in h2load output:\n{output}")
    requests = _H2_REQUESTS.search(output)
    status = _H2_STATUS.search(output)
    req_time = _H2_REQ_TIME.search(output)
    non_2xx = sum(map(int, status.groups()[1:])) if status else 0
    errors = {}
    if requests:
        errors = {"failed": int(requests.group(5)), "errored": int(requests.group(6))}
    return LoadResult(
        requests_per_sec=float(rps.group(1)),
        p50_ms=to_ms(float(req_time.group(5)), req_time.group(6)) if req_time else None,
        p99_ms=None,
        total_requests=int(requests.group(3)) if requests else 0,
        non_2xx=non_2xx,
        socket_errors=errors,
        raw=output,
    )


def run_h2load(
    url: str,
    duration: int,
    connections: int = 10,
    streams: int = 1,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Run h2load over cleartext HTTP/2 (prior knowledge) against `url` on 127.0.0.1."""
    argv = ["h2load", "-t1", f"-c{connections}", f"-m{streams}", f"-D{duration}"]
    for name, value in (headers or {}).items():
        # HTTP/2 carries the host in :authority; a separate Host header makes nginx answer 400.
        name = ":authority" if name.lower() == "host" else name
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return parse_h2load(done.stdout)
