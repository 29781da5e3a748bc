"""Extra proxyd measurements for `nox -s bench` (issue 6, item 2), rendered as one Markdown section.

Four measurements, each against a freshly started proxyd (`python -m proxyd serve` with its own
throwaway redis-server, REQUEST_LOGGING=false, WORKERS left at its default), all on loopback:

1. streaming a 512 MiB body, download (nginx static file) and upload (a counting sink backend),
   direct vs through proxyd, with proxyd's peak RSS during the proxied transfers;
2. idle RSS before and after 1,000 proxies are created through GraphQL (default WORKERS, and
   WORKERS=1 for comparison);
3. RSS after a warm-up and after 100,000 proxied requests (growth = leak suspicion);
4. 5,000 concurrent idle WebSocket connections held through proxyd, with RSS and open
   descriptors, in two rounds (a second round tells retained memory from a leak). proxyd is
   started with a soft RLIMIT_NOFILE of 1024 to check that it raises its own limit.

RSS is always the sum of VmRSS over proxyd's process tree (the supervisor and its worker
children), never the redis-server, which runs separately. `--extras-scale` shrinks every size
and count for a quick run. A measurement that fails records its error in its own subsection and
never stops the main benchmark. Every process started here is stopped before `measure_extras`
returns.

This module is also the small backends the measurements need, run as separate processes:
`python -m bench.extras sink PORT` (counts and discards request bodies) and
`python -m bench.extras ws-echo PORT` (a WebSocket echo server). `python -m bench.extras measure
--scale 0.05` runs only the extra measurements and prints the section.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

if __package__ in (None, ""):
    # Run as `python bench/extras.py`: make `import bench` work from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import trio
import trio_websocket

from bench import nginx, proxyd_target
from bench.procs import LOOPBACK, ManagedProcess, free_port, wait_for_port
from bench.wrk import run_wrk

REPO_ROOT = Path(__file__).resolve().parents[1]

# Full-scale sizes and counts (issue 6 item 2); `scale` multiplies each one.
STREAM_MIB = 512
IDLE_PROXIES = 1_000
REQUESTS = 100_000
WEBSOCKETS = 5_000

# Targets from issue 6 item 5.
STREAM_TARGET = 0.8  # proxied throughput / direct throughput
IDLE_RSS_TARGET_MB = 100.0  # with 1,000 proxies configured

MB = 1_000_000  # RSS is reported in MB (10^6 bytes), like the target
MIB = 1024 * 1024
STREAM_REPEATS = 3  # transfers per direction and path; the median is reported
STREAM_BUDGET_S = 90.0  # stop repeating a direction's transfers after this long
PROXIES_PER_MUTATION = 50  # GRAPHQL_MAX_ALIASES (50 by default) per operation
WS_BATCH = 200  # WebSocket connections opened concurrently, then a short pause
WS_PAUSE_S = 0.05
WS_HOLD_S = 5.0
WS_ECHO_SAMPLE = 20
WRK_CONNECTIONS = 10
FILE_LIMIT_FOR_PROXYD = 1024  # soft RLIMIT_NOFILE proxyd is started with: it must raise its own


# --- process tree memory ------------------------------------------------------------------


@dataclass
class ProcMem:
    """One process of proxyd's tree: role, RSS and peak RSS (kB), open-file soft limit, open fds."""

    pid: int
    role: str
    rss_kb: int
    hwm_kb: int
    nofile: str = "?"
    fds: int = 0


@dataclass
class TreeMem:
    """A snapshot of the memory of proxyd's process tree."""

    procs: list[ProcMem]

    @property
    def rss_bytes(self) -> int:
        return sum(p.rss_kb for p in self.procs) * 1024

    @property
    def fds(self) -> int:
        """Open file descriptors over the whole tree."""
        return sum(p.fds for p in self.procs)

    @property
    def mb(self) -> float:
        """Total RSS of the tree in MB (10^6 bytes)."""
        return self.rss_bytes / MB

    def breakdown(self) -> str:
        """Per-process RSS, e.g. `supervisor 30.1 + workers 61.2, 60.8 MB`."""
        parts = []
        roots = [p for p in self.procs if p.role != "worker"]
        workers = [p for p in self.procs if p.role == "worker"]
        for p in roots:
            parts.append(f"{p.role} {p.rss_kb * 1024 / MB:.1f}")
        if workers:
            parts.append("workers " + ", ".join(f"{p.rss_kb * 1024 / MB:.1f}" for p in workers))
        return " + ".join(parts) + " MB"


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the command name (index 0 is the state, 1 the ppid)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc/PID/task/*/children, else a scan of /proc)."""
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(x) for x in (task / "children").read_text().split()]
        return kids
    except OSError:
        pass
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and len(fields) > 1 and fields[1] == str(pid):
                kids.append(int(entry.name))
    return kids


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _kb(value: str) -> int:
    return int(value.split()[0]) if value else 0


def _nofile(pid: int) -> str:
    """The soft RLIMIT_NOFILE of `pid` as /proc/PID/limits shows it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return line.split()[3]
    return "?"


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, except redis-server processes."""
    pids: list[int] = []
    stack = [root]
    while stack and len(pids) < 1000:
        pid = stack.pop()
        if _status(pid).get("Name") == "redis-server":
            continue
        pids.append(pid)
        stack += _children(pid)
    return pids


def tree_memory(root: int) -> TreeMem:
    """VmRSS and VmHWM of every process in the tree under `root` (redis-server excluded)."""
    procs = []
    for pid in process_tree(root):
        status = _status(pid)
        if not status:
            continue  # exited meanwhile
        role = "worker" if pid != root else ("supervisor" if _children(pid) else "process")
        procs.append(ProcMem(pid, role, _kb(status.get("VmRSS", "")), _kb(status.get("VmHWM", ""))))
    for p in procs:
        p.nofile = _nofile(p.pid)
        with contextlib.suppress(OSError):
            p.fds = len(os.listdir(f"/proc/{p.pid}/fd"))
    return TreeMem(procs)


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU seconds used so far by the processes of the tree under `root`."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields and len(fields) > 12:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def expected_processes(proxyd: proxyd_target.Proxyd) -> int:
    """Processes in the tree once started: 1, or the supervisor plus WORKERS workers."""
    raw = proxyd.env.get("WORKERS", "auto").strip().lower()
    workers = (os.cpu_count() or 1) if raw in ("", "auto") else int(raw)
    return 1 if workers <= 1 else workers + 1


def settled_memory(proxyd: proxyd_target.Proxyd, timeout: float = 20.0) -> TreeMem:
    """Tree memory once every worker is up and the total RSS stopped moving (±1% over 0.5 s)."""
    expected = expected_processes(proxyd)
    deadline = time.monotonic() + timeout
    previous: TreeMem | None = None
    while True:
        proxyd.proc.check_alive()
        mem = tree_memory(proxyd.proc.pid)
        steady = previous is not None and abs(mem.mb - previous.mb) <= 0.01 * previous.mb
        if (len(mem.procs) >= expected and steady) or time.monotonic() > deadline:
            return mem
        previous = mem
        time.sleep(0.5)


class RssSampler:
    """Samples the tree's total RSS every `interval` seconds in a thread; keeps the peak."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.peak: TreeMem | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            mem = tree_memory(self.root)
            self.samples += 1
            if self.peak is None or mem.rss_bytes > self.peak.rss_bytes:
                self.peak = mem
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --- starting and stopping ------------------------------------------------------------------


@contextlib.contextmanager
def _file_limit(soft: int) -> Iterator[None]:
    """Temporarily lower this process's soft RLIMIT_NOFILE (children started inside inherit it)."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(soft, hard) if hard != resource.RLIM_INFINITY else soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def raise_file_limit() -> tuple[int, int]:
    """Lift this process's soft RLIMIT_NOFILE to the hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class Stack:
    """The processes one extras run started; `close()` stops them all (proxyd trees included)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.exit = contextlib.ExitStack()
        self.findings: list[str] = []
        self._stopped: set[int] = set()

    def close(self) -> None:
        self.exit.close()

    def redis(self, name: str) -> int:
        proc, port = proxyd_target.start_redis(self.workdir / name)
        self.exit.callback(proc.stop)
        return port

    def proxyd(self, name: str, redis_port: int, **settings: str) -> proxyd_target.Proxyd:
        """A fresh proxyd (request logging off) started with a low soft open-file limit."""
        with _file_limit(FILE_LIMIT_FOR_PROXYD):
            proxyd = proxyd_target.start_proxyd(
                self.workdir / name, redis_port, REQUEST_LOGGING="false", **settings
            )
        self.exit.callback(self.stop_proxyd, proxyd)
        proxyd.issue_admin_token()
        return proxyd

    def stop_proxyd(self, proxyd: proxyd_target.Proxyd) -> None:
        """Stop proxyd; SIGKILL any worker that outlived its supervisor (and note it)."""
        if proxyd.proc.pid in self._stopped:
            return
        self._stopped.add(proxyd.proc.pid)
        tree = [(pid, _start_time(pid)) for pid in process_tree(proxyd.proc.pid)]
        proxyd.proc.stop()
        leftovers = []
        for pid, started in tree:
            fields = _stat_fields(pid)
            if started is not None and fields and fields[0] != "Z" and _start_time(pid) == started:
                leftovers.append(pid)
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if leftovers:
            self.findings.append(
                f"{len(leftovers)} proxyd worker process(es) were still running after the "
                "supervisor's process group was stopped (SIGTERM, then SIGKILL after 5 s): "
                "workers run in their own session, so they escape a group kill."
            )

    def helper(self, kind: str) -> int:
        """Start `python -m bench.extras KIND PORT` (sink or ws-echo); returns its port."""
        port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        workdir = self.workdir / kind
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "bench.extras", kind, str(port)]
        proc = ManagedProcess(kind, argv, log_dir=workdir, env=env, cwd=workdir)
        self.exit.callback(proc.stop)
        wait_for_port(port, proc)
        return port


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """The exception on one table-safe line; a long message keeps its first and last lines
    (for a process that died, those say what happened: its last stderr lines)."""
    lines = [line.strip(" |") for line in str(exc).splitlines() if any(map(str.isalpha, line))]
    if len(lines) > 3:
        lines = [lines[0], "…", *lines[-2:]]
    text = " ".join(f"{type(exc).__name__}: {' '.join(lines)}".split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit // 3] + " … " + text[-(limit * 2 // 3) :]


def _scaled(full: int, scale: float, minimum: int) -> int:
    return max(minimum, round(full * scale))


def _fmt_mb(mem: TreeMem | None) -> str:
    return "–" if mem is None else f"{mem.mb:.1f} MB"


def _create(proxyd: proxyd_target.Proxyd, hostname: str, target: str) -> None:
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        proxyd.create_proxy(client, hostname, target)


def _wait_serving(
    proxyd: proxyd_target.Proxyd, hostname: str, path: str = "/", timeout: float = 30.0
) -> None:
    """Poll until `hostname` answers 200 on proxyd three times in a row (fresh connections)."""
    deadline = time.monotonic() + timeout
    streak, status = 0, 0
    while streak < 3:
        status = proxyd_target.http_status(proxyd.http_port, hostname, path)
        streak = streak + 1 if status == 200 else 0
        if streak < 3 and time.monotonic() > deadline:
            raise TimeoutError(f"{hostname} did not serve within {timeout:.0f} s (last {status})")
        if status != 200:
            time.sleep(0.02)


# --- results and rendering ------------------------------------------------------------------


@dataclass
class Section:
    """One measurement's Markdown: a title, a table (or an error) and honest sentences."""

    title: str
    align: str = ""  # one l/r per column; default: first column left, the others right
    table: list[list[str]] = field(default_factory=list)  # first row is the header
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def render(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.table:
            header, *body = self.table
            lines.append("| " + " | ".join(header) + " |")
            align = self.align or "l" + "r" * (len(header) - 1)
            lines.append("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
            lines += ["| " + " | ".join(row) + " |" for row in body]
            lines.append("")
        if self.error:
            lines += [f"**Failed:** {self.error}", ""]
        for note in self.notes:
            lines += [note, ""]
        return "\n".join(lines).rstrip("\n")


@dataclass
class Extras:
    """Everything `measure_extras` found, ready to render."""

    scale: float
    sections: list[Section] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def render_extras(extras: Extras) -> str:
    """The `## Extra measurements` Markdown section."""
    scale = (
        "full size"
        if extras.scale == 1
        else f"**reduced**: every size and count × {extras.scale:g} (`--extras-scale`)"
    )
    parts = [
        "## Extra measurements",
        "",
        (
            f"Scale: {scale}. Each measurement runs against a freshly started proxyd "
            "(`python -m proxyd serve`, REQUEST_LOGGING=false, WORKERS at its default, its own "
            "redis-server), on loopback, in the same run as the table above. RSS is the sum of "
            "VmRSS over proxyd's process tree (supervisor and worker processes; the redis-server "
            "is not included), in MB (10⁶ bytes). The load generators, backends and proxyd share "
            "the same cores, so these numbers are noisy, and lower than on dedicated hardware."
        ),
        "",
    ]
    parts += [f"- {line}" for line in extras.setup]
    if extras.setup:
        parts.append("")
    for section in extras.sections:
        parts += [section.render(), ""]
    if extras.findings:
        parts += ["Problems found in proxyd during these measurements:", ""]
        parts += [f"- {finding}" for finding in extras.findings]
        parts.append("")
    parts.append(f"The extra measurements took {extras.seconds:.0f} s.")
    return "\n".join(parts).rstrip("\n") + "\n"


# --- 1. streaming ---------------------------------------------------------------------------

_CURL_FORMAT = "\n%{http_code} %{size_download} %{size_upload} %{time_total}\n"


def _curl(args: list[str], timeout: float) -> tuple[str, int, int, int, float]:
    """Run curl; returns (body printed, status, bytes down, bytes up, seconds)."""
    if not shutil.which("curl"):
        raise RuntimeError("curl not found: apt-get install -y curl")
    argv = ["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout)), "-w", _CURL_FORMAT]
    done = subprocess.run(
        argv + args, capture_output=True, text=True, timeout=timeout + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"curl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    body, _, last = done.stdout.rstrip("\n").rpartition("\n")
    code, down, up, seconds = last.split()
    return body, int(code), int(down), int(up), float(seconds)


def _download(url: str, host: str, size: int) -> float:
    """Fetch `url` into /dev/null; MiB/s."""
    _, code, down, _, seconds = _curl(["-o", "/dev/null", "-H", f"Host: {host}", url], 600)
    if code != 200 or down != size:
        raise RuntimeError(f"download of {url} gave HTTP {code} with {down} of {size} bytes")
    return size / MIB / max(seconds, 1e-9)


def _upload(url: str, host: str, path: Path, size: int) -> float:
    """POST the file at `path` (streamed by curl) to a sink; MiB/s."""
    args = ["-T", str(path), "-X", "POST", "-H", "Expect:", "-H", f"Host: {host}", url]
    args += ["-H", "Content-Type: application/octet-stream"]
    body, code, _, up, seconds = _curl(args, 600)
    counted = body.strip().splitlines()[-1] if body.strip() else ""
    if code != 200 or up != size or counted != str(size):
        raise RuntimeError(
            f"upload to {url} gave HTTP {code}: sent {up} of {size} bytes, the sink counted "
            f"{counted or 'nothing'}"
        )
    return size / MIB / max(seconds, 1e-9)


def measure_streaming(
    proxyd: proxyd_target.Proxyd,
    backend_url: str,
    files: Path,
    sink_port: int,
    scale: float,
) -> Section:
    """Download and upload a 512 MiB (× scale) body, direct and through proxyd."""
    mib = _scaled(STREAM_MIB, scale, 1)
    size = mib * MIB
    section = Section(f"Streaming a {mib} MiB body", align="lrrrl")
    body = files / "stream.bin"
    files.mkdir(parents=True, exist_ok=True)
    with open(body, "wb") as handle:
        handle.truncate(size)  # a sparse file of zeros: served from the page cache
    sink_url = f"http://{LOOPBACK}:{sink_port}"
    _create(proxyd, "stream.extras.local", backend_url)
    _create(proxyd, "sink.extras.local", sink_url)
    _wait_serving(proxyd, "stream.extras.local")
    _wait_serving(proxyd, "sink.extras.local")

    before = settled_memory(proxyd)
    speeds: dict[tuple[str, str], list[float]] = {}
    # proxyd's CPU seconds per wall second during each transfer (1.0 = one core busy)
    busy: dict[tuple[str, str], list[float]] = {}
    paths = {
        "download": {
            "direct": lambda: _download(f"{backend_url}/files/stream.bin", "direct", size),
            "proxyd": lambda: _download(
                f"{proxyd.http_url}/files/stream.bin", "stream.extras.local", size
            ),
        },
        "upload": {
            "direct": lambda: _upload(f"{sink_url}/upload", "direct", body, size),
            "proxyd": lambda: _upload(f"{proxyd.http_url}/upload", "sink.extras.local", body, size),
        },
    }
    with RssSampler(proxyd.proc.pid) as sampler:
        for direction, ways in paths.items():
            started = time.monotonic()
            for attempt in range(STREAM_REPEATS):
                for way, transfer in ways.items():
                    cpu, wall = tree_cpu_seconds(proxyd.proc.pid), time.monotonic()
                    speed = transfer()
                    cpu, wall = tree_cpu_seconds(proxyd.proc.pid) - cpu, time.monotonic() - wall
                    speeds.setdefault((direction, way), []).append(speed)
                    busy.setdefault((direction, way), []).append(cpu / wall)
                    print(f"  {direction} {way} #{attempt + 1}: {speed:,.0f} MiB/s", flush=True)
                if time.monotonic() - started > STREAM_BUDGET_S:
                    break
    peak = sampler.peak

    section.table.append(["direction", "direct", "through proxyd", "proxyd / direct", "target"])
    for direction, how in (
        ("download", "nginx static file → curl"),
        ("upload", "curl -T → counting sink"),
    ):
        direct = statistics.median(speeds[(direction, "direct")])
        proxied = statistics.median(speeds[(direction, "proxyd")])
        ratio = proxied / direct
        runs = len(speeds[(direction, "proxyd")])
        section.table.append(
            [
                f"{direction} ({how})",
                f"{direct:,.0f} MiB/s",
                f"{proxied:,.0f} MiB/s",
                f"{ratio:.2f}×",
                f"≥ {STREAM_TARGET:.1f}× {'met' if ratio >= STREAM_TARGET else 'missed'}",
            ]
        )
        if ratio < STREAM_TARGET:
            cores = statistics.median(busy[(direction, "proxyd")])
            limit = (
                f"proxyd's processes used {cores:.0%} of one core during these transfers: it was "
                "CPU-bound (one connection is served by one worker, whose per-chunk Python work "
                "is the limit)."
                if cores >= 0.85
                else f"proxyd's processes used only {cores:.0%} of one core during these "
                "transfers, so CPU time in proxyd is not the whole limit: the relay also waits "
                f"for the client, the backend and its share of the {os.cpu_count()} cores they "
                "all compete for."
            )
            section.notes.append(
                f"Target missed for the {direction}: proxyd reached {ratio:.2f}× direct, "
                f"{STREAM_TARGET - ratio:.2f} below the {STREAM_TARGET:.1f}× target "
                f"({proxied:,.0f} vs {direct:,.0f} MiB/s, median of {runs}). {limit}"
            )
    section.notes.insert(
        0,
        (
            f"Median of up to {STREAM_REPEATS} transfers per row (direct and proxied alternate). "
            f"proxyd RSS: {_fmt_mb(before)} before, peak **{_fmt_mb(peak)}** while streaming "
            f"(sampled every 50 ms, {sampler.samples} samples; peak per process: "
            f"{peak.breakdown() if peak else '–'}). "
            f"The body is {size:,} bytes with a Content-Length; the client is curl "
            "(`-o /dev/null` down, `-T FILE -X POST` up), the sink a small Python (trio) backend "
            "that counts and discards the body."
        ),
    )
    return section


# --- 2. idle RSS with many proxies ----------------------------------------------------------


def _create_many(proxyd: proxyd_target.Proxyd, hostnames: list[str], target: str) -> None:
    """createProxy for every hostname, PROXIES_PER_MUTATION aliased fields per request."""
    with httpx.Client(timeout=120.0, trust_env=False) as client:
        for first in range(0, len(hostnames), PROXIES_PER_MUTATION):
            batch = hostnames[first : first + PROXIES_PER_MUTATION]
            fields = " ".join(
                f'p{i}: createProxy(input: {{hostname: "{h}", targetUrl: "{target}", '
                f"enableHttps: false}}) {{ hostname }}"
                for i, h in enumerate(batch)
            )
            data = proxyd.graphql(client, f"mutation {{ {fields} }}", {})
            made = {v["hostname"] for v in data.values() if v}
            if made != set(batch):
                raise RuntimeError(f"createProxy batch created {len(made)} of {len(batch)}")


def _idle_with_proxies(
    stack: Stack, name: str, backend_url: str, count: int, **settings: str
) -> tuple[TreeMem, TreeMem, float, float, int]:
    """(fresh RSS, RSS with `count` proxies, seconds to create, seconds to serve, sampled)."""
    proxyd = stack.proxyd(f"proxyd-{name}", stack.redis(f"redis-{name}"), **settings)
    try:
        time.sleep(2)
        before = settled_memory(proxyd)
        hostnames = [f"idle{i}.extras.local" for i in range(count)]
        started = time.monotonic()
        _create_many(proxyd, hostnames, backend_url)
        created_s = time.monotonic() - started
        sample = {hostnames[0], hostnames[-1], *random.Random(6).sample(hostnames, min(8, count))}
        for hostname in sorted(sample):
            _wait_serving(proxyd, hostname)
        serving_s = time.monotonic() - started
        time.sleep(2)
        after = settled_memory(proxyd)
    finally:
        stack.stop_proxyd(proxyd)
    return before, after, created_s, serving_s, len(sample)


def measure_idle_proxies(stack: Stack, backend_url: str, scale: float) -> Section:
    """Fresh proxyd: RSS idle, then with 1,000 (× scale) proxies configured; default WORKERS
    and, for comparison, WORKERS=1."""
    count = _scaled(IDLE_PROXIES, scale, 10)
    full = _scaled(IDLE_PROXIES, 1.0, 10)
    section = Section(f"Idle RSS with {count:,} proxies", align="lrrrl")
    section.table = [
        [
            "proxyd",
            "fresh",
            f"{count:,} proxies, 2 s idle",
            "growth",
            "per process (with the proxies)",
        ]
    ]
    results = {}
    for label, settings in (("default WORKERS", {}), ("WORKERS=1", {"WORKERS": "1"})):
        try:
            results[label] = _idle_with_proxies(
                stack, label.split()[-1].replace("=", "").lower(), backend_url, count, **settings
            )
        except Exception as exc:  # noqa: BLE001 - keep the other configuration's numbers
            traceback.print_exc()
            section.notes.append(f"**{label} failed:** {_one_line(exc, 400)}")
            continue
        before, after, created_s, serving_s, sampled = results[label]
        workers = sum(1 for p in after.procs if p.role == "worker")
        per_proxy = (after.rss_bytes - before.rss_bytes) / count / 1000
        section.table.append(
            [
                f"{label} ({workers} workers)" if workers else label,
                _fmt_mb(before),
                f"**{_fmt_mb(after)}**",
                f"{after.mb - before.mb:+.1f} MB ({per_proxy:.1f} kB per proxy)",
                after.breakdown(),
            ]
        )
        section.notes.append(
            f"{label}: {math.ceil(count / PROXIES_PER_MUTATION)} GraphQL request(s) of up to "
            f"{PROXIES_PER_MUTATION} aliased `createProxy(enableHttps: false)` fields took "
            f"{created_s:.1f} s; {sampled} sampled hostnames (first, last, random) all answered "
            f"200 {serving_s:.1f} s after the first request."
        )
    if not results:
        raise RuntimeError(" ".join(section.notes) or "no configuration could be measured")
    before, after, *_ = results.get("default WORKERS") or results["WORKERS=1"]
    if after.mb > IDLE_RSS_TARGET_MB:
        supervisor = [p for p in before.procs if p.role == "supervisor"]
        fixed = (
            f" The supervisor, which serves no traffic, holds {supervisor[0].rss_kb * 1024 / MB:.0f}"
            " MB by itself."
            if supervisor
            else ""
        )
        single = results.get("WORKERS=1")
        alone = (
            f" With WORKERS=1 the same proxies take {_fmt_mb(single[1])}"
            f"{' (within the target)' if single[1].mb <= IDLE_RSS_TARGET_MB else ''}."
            if single
            else ""
        )
        section.notes.append(
            f"Target missed: {after.mb:.1f} MB is {after.mb - IDLE_RSS_TARGET_MB:.1f} MB "
            f"({after.mb / IDLE_RSS_TARGET_MB - 1:.0%}) over the {IDLE_RSS_TARGET_MB:.0f} MB "
            f"target (for {full:,} proxies). Of that, the fresh proxyd already used "
            f"{before.mb:.1f} MB ({before.breakdown()}); the proxies added "
            f"{after.mb - before.mb:.1f} MB.{fixed}{alone}"
        )
    elif count < full:
        section.notes.append(
            f"Within the {IDLE_RSS_TARGET_MB:.0f} MB target at this reduced scale; the target is "
            f"for {full:,} proxies."
        )
    return section


# --- 3. RSS after many requests -------------------------------------------------------------


def measure_request_growth(proxyd: proxyd_target.Proxyd, backend_url: str, scale: float) -> Section:
    """RSS after a warm-up, after half and after all of 100,000 (× scale) proxied requests."""
    total = _scaled(REQUESTS, scale, 1000)
    section = Section(f"RSS after {total:,} requests", align="lrrl")
    host = "rss.extras.local"
    _create(proxyd, host, backend_url)
    _wait_serving(proxyd, host)
    url = f"{proxyd.http_url}/"
    headers = {"Host": host}
    warm = run_wrk(url, 2, WRK_CONNECTIONS, 1, headers)
    time.sleep(1)
    points = [("after a 2 s warm-up", warm.total_requests, settled_memory(proxyd, 5.0))]
    rate = max(warm.requests_per_sec, 100.0)
    done, errors, runs = 0, warm.error_count, 0
    for goal in (total // 2, total):
        while done < goal and runs < 40:
            seconds = min(120, max(1, math.ceil((goal - done) / rate * 1.05)))
            result = run_wrk(url, seconds, WRK_CONNECTIONS, 1, headers)
            runs += 1
            done += result.total_requests
            errors += result.error_count
            rate = max(result.requests_per_sec, 100.0)
            print(f"  {done:,} of {total:,} requests ({result.summary()})", flush=True)
        time.sleep(1)
        points.append((f"after {done:,} more requests", done, settled_memory(proxyd, 5.0)))
    if done < total:
        raise RuntimeError(f"only {done:,} of {total:,} requests were made in {runs} wrk runs")
    base = points[0][2]
    section.table = [["point", "RSS (tree)", "vs warm-up", "per process"]]
    for label, _, mem in points:
        section.table.append([label, _fmt_mb(mem), f"{mem.mb - base.mb:+.1f} MB", mem.breakdown()])
    last = points[-1][2]
    half = points[1][2]
    section.notes.append(
        f"wrk -c{WRK_CONNECTIONS} -t1 to `/` through proxyd (request logging off) in {runs} "
        f"runs of about {rate:,.0f} req/s; {errors} failed requests. Growth from the warm-up "
        f"to the end: {last.mb - base.mb:+.1f} MB "
        f"({(last.rss_bytes - base.rss_bytes) / max(done, 1):+.1f} bytes per request); in the "
        f"second half alone: {last.mb - half.mb:+.1f} MB."
    )
    if last.mb - half.mb > max(2.0, 0.05 * half.mb):
        section.notes.append(
            f"RSS still grew by {last.mb - half.mb:.1f} MB over the second "
            f"{done - points[1][1]:,} requests: this looks like a leak, not warm-up."
        )
    if errors:
        section.notes.append(f"{errors} requests failed (non-2xx or socket errors).")
    return section


# --- 4. idle WebSocket connections ----------------------------------------------------------


@dataclass
class WsOutcome:
    """What happened to the WebSocket connections held through proxyd."""

    attempted: int
    opened: int = 0
    open_seconds: float = 0.0
    still_open: int = 0
    echo_ok: int = 0
    echo_tried: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    held: TreeMem | None = None


async def _open_ws(
    holder: trio.Nursery,
    port: int,
    host: str,
    conns: list[trio_websocket.WebSocketConnection],
    errors: Counter[str],
) -> None:
    stream: trio.SocketStream | None = None
    try:
        with trio.fail_after(30):
            stream = await trio.open_tcp_stream(LOOPBACK, port)
            ws = await trio_websocket.wrap_client_stream(holder, stream, host, "/")
        conns.append(ws)
    except (OSError, trio.TooSlowError, trio_websocket.HandshakeError) as exc:
        errors[_one_line(exc, 120)] += 1
        if stream is not None:
            await trio.aclose_forcefully(stream)


async def _close_ws(ws: trio_websocket.WebSocketConnection) -> None:
    with trio.move_on_after(10), contextlib.suppress(Exception):
        await ws.aclose()


async def _hold_websockets(port: int, host: str, count: int, root: int) -> WsOutcome:
    """Open `count` connections through proxyd in batches, hold them, check a sample echoes."""
    out = WsOutcome(attempted=count)
    conns: list[trio_websocket.WebSocketConnection] = []
    async with trio.open_nursery() as holder:
        try:
            started = trio.current_time()
            for first in range(0, count, WS_BATCH):
                async with trio.open_nursery() as openers:
                    for _ in range(first, min(count, first + WS_BATCH)):
                        openers.start_soon(_open_ws, holder, port, host, conns, out.errors)
                await trio.sleep(WS_PAUSE_S)
            out.open_seconds = trio.current_time() - started
            out.opened = len(conns)
            print(f"  {out.opened:,} of {count:,} open in {out.open_seconds:.1f} s", flush=True)
            await trio.sleep(WS_HOLD_S)
            out.held = tree_memory(root)
            out.still_open = sum(1 for ws in conns if ws.closed is None)
            picks = random.Random(6).sample(conns, min(WS_ECHO_SAMPLE, len(conns)))
            for i, ws in enumerate(picks):
                out.echo_tried += 1
                with contextlib.suppress(trio.TooSlowError, trio_websocket.ConnectionClosed):
                    with trio.fail_after(5):
                        await ws.send_message(f"echo {i}")
                        if await ws.get_message() == f"echo {i}":
                            out.echo_ok += 1
        finally:
            with trio.move_on_after(60):
                async with trio.open_nursery() as closers:
                    for ws in conns:
                        closers.start_soon(_close_ws, ws)
            holder.cancel_scope.cancel()
    return out


def measure_websockets(stack: Stack, proxyd: proxyd_target.Proxyd, scale: float) -> Section:
    """Hold 5,000 (× scale) idle WebSocket connections through proxyd to an echo backend."""
    count = _scaled(WEBSOCKETS, scale, 20)
    section = Section(f"{count:,} concurrent idle WebSocket connections", align="lrrrl")
    soft, hard = raise_file_limit()
    if soft < count + 200:
        section.notes.append(
            f"This process may open only {soft} files (hard limit {hard}); connections beyond "
            "that fail in the client, not in proxyd."
        )
    echo_port = stack.helper("ws-echo")
    host = "ws.extras.local"
    _create(proxyd, host, f"http://{LOOPBACK}:{echo_port}")
    _wait_serving_ws(proxyd.http_port, host)
    time.sleep(1)
    before = settled_memory(proxyd, 5.0)
    section.table = [
        ["state", "connections", "RSS (tree)", "open fds (tree)", "per process"],
        ["before", "0", _fmt_mb(before), f"{before.fds:,}", before.breakdown()],
    ]
    outcomes: list[WsOutcome] = []
    after_close: list[TreeMem] = []
    for round_ in (1, 2):  # a second round tells retained memory from a leak
        out = trio.run(_hold_websockets, proxyd.http_port, host, count, proxyd.proc.pid)
        outcomes.append(out)
        closed, waited = _after_close(proxyd, before.fds)
        after_close.append(closed)
        held = out.held
        section.table.append(
            [
                f"round {round_}: all open, after {WS_HOLD_S:.0f} s idle",
                f"{out.still_open:,} of {count:,}",
                f"**{_fmt_mb(held)}**" if round_ == 1 else _fmt_mb(held),
                f"{held.fds:,}" if held else "–",
                held.breakdown() if held else "–",
            ]
        )
        if round_ == 1 and held and out.opened:
            per_conn = (held.rss_bytes - before.rss_bytes) / out.opened / 1000
            section.table.append(
                [
                    "growth",
                    "",
                    f"{held.mb - before.mb:+.1f} MB",
                    "",
                    f"{per_conn:.1f} kB/connection",
                ]
            )
        section.table.append(
            [
                f"round {round_}: {waited:.0f} s after closing them all",
                "0",
                _fmt_mb(closed),
                f"{closed.fds:,}",
                closed.breakdown(),
            ]
        )
        if closed.fds > before.fds + 20:
            stack.findings.append(
                f"{closed.fds - before.fds:,} more file descriptors were open in proxyd "
                f"{waited:.0f} s after all {out.opened:,} WebSocket clients had closed than "
                "before they connected (connections not released)."
            )
    out = outcomes[0]
    if len(after_close) == 2 and after_close[0].mb > before.mb * 1.1:
        first = after_close[0].mb - before.mb
        second = after_close[1].mb - after_close[0].mb
        verdict = (
            "so the memory is reused, not leaked"
            if second < 0.2 * first
            else "so it keeps growing with every round: this looks like a leak"
        )
        section.notes.append(
            f"After the clients closed, proxyd's descriptors went back to {before.fds} but RSS "
            f"stayed {first:.0f} MB above its starting point (freed memory is kept by the Python "
            f"processes, not returned to the system); round 2 added {second:+.1f} MB, {verdict}."
        )
    limits = ", ".join(f"{p.role} {p.nofile}" for p in before.procs)
    section.notes.append(
        f"{out.opened:,} of {count:,} connections opened in round 1 (trio-websocket clients, "
        f"batches of {WS_BATCH} with {WS_PAUSE_S * 1000:.0f} ms pauses, {out.open_seconds:.1f} s "
        f"in all); {out.still_open:,} still open after {WS_HOLD_S:.0f} s; {out.echo_ok} of "
        f"{out.echo_tried} sampled connections echoed a message. Round 2 repeats it on the same "
        f"proxyd ({outcomes[1].still_open:,} held, {outcomes[1].echo_ok} of "
        f"{outcomes[1].echo_tried} echoed). Backend: a trio-websocket echo server. proxyd was "
        f"started with a soft open-file limit of {FILE_LIMIT_FOR_PROXYD} (hard {hard}); the "
        f"limits its processes run with: {limits}."
    )
    low = [p for p in before.procs if p.nofile.isdigit() and int(p.nofile) < 2 * count + 100]
    if low:
        stack.findings.append(
            "proxyd did not raise its open-file limit high enough for "
            f"{count:,} WebSocket connections (2 descriptors each): {limits}."
        )
    for round_, out in enumerate(outcomes, 1):
        if out.errors:
            worst = "; ".join(f"{n} × {text}" for text, n in out.errors.most_common(3))
            section.notes.append(
                f"Round {round_}: {sum(out.errors.values()):,} connections failed: {worst}."
            )
        if out.still_open < count or out.echo_ok < out.echo_tried:
            section.notes.append(
                f"Round {round_}: not all connections held: {count - out.still_open:,} of "
                f"{count:,} ({(count - out.still_open) / count:.1%}) were not open at the end "
                f"of the hold; {out.echo_tried - out.echo_ok} of {out.echo_tried} sampled "
                "connections did not echo."
            )
    return section


def _after_close(proxyd: proxyd_target.Proxyd, fds_before: int) -> tuple[TreeMem, float]:
    """Tree memory once proxyd's descriptors are back near `fds_before` (at most 15 s)."""
    started = time.monotonic()
    while True:
        time.sleep(1)
        mem = tree_memory(proxyd.proc.pid)
        if mem.fds <= fds_before + 20 or time.monotonic() - started > 15:
            break
    time.sleep(1)
    return settled_memory(proxyd, 10.0), time.monotonic() - started


def _wait_serving_ws(port: int, host: str, timeout: float = 30.0) -> None:
    """Wait until a WebSocket handshake through proxyd for `host` succeeds."""

    async def attempt() -> bool:
        with trio.move_on_after(5):
            try:
                stream = await trio.open_tcp_stream(LOOPBACK, port)
                async with trio.open_nursery() as nursery:
                    ws = await trio_websocket.wrap_client_stream(nursery, stream, host, "/")
                    await ws.send_message("ready?")
                    ok = await ws.get_message() == "ready?"
                    await ws.aclose()
                    return ok
            except (OSError, trio_websocket.HandshakeError, trio_websocket.ConnectionClosed):
                return False
        return False

    deadline = time.monotonic() + timeout
    while not trio.run(attempt):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no WebSocket echo through proxyd for {host} in {timeout:.0f} s")
        time.sleep(0.1)


# --- the whole run ----------------------------------------------------------------------------


class SetupFailed(RuntimeError):
    """The shared backends or proxyd could not be started; the message says why."""


def _guarded(title: str, measure: Callable[[], Section]) -> Section:
    """Run one measurement; any failure becomes the section's error text."""
    print(f"extra: {title} ...", flush=True)
    try:
        section = measure()
    except Exception as exc:  # noqa: BLE001 - a failed extra must not stop the benchmark
        traceback.print_exc()
        error = str(exc) if isinstance(exc, SetupFailed) else _one_line(exc, 600)
        return Section(title, error=error)
    for row in section.table[1:]:
        print("  " + " | ".join(row), flush=True)
    for note in section.notes:
        print(f"  {note}", flush=True)
    return section


def measure_extras(workdir: Path, scale: float = 1.0) -> Extras:
    """Run the four extra measurements; every process started here is stopped on return."""
    started = time.monotonic()
    extras = Extras(scale=scale)
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir)
    try:
        proxyd: proxyd_target.Proxyd | None = None
        backend_url, sink_port = "", 0
        files = workdir / "backend" / "html" / "files"
        setup_error = ""
        try:
            backend_port = free_port()
            backend = nginx.start_backend(workdir / "backend", backend_port)
            stack.exit.callback(backend.stop)
            backend_url = f"http://{LOOPBACK}:{backend_port}"
            sink_port = stack.helper("sink")
            proxyd = stack.proxyd("proxyd", stack.redis("redis"))
            mem = settled_memory(proxyd)
            extras.setup.append(
                f"proxyd under test: {len(mem.procs)} process(es) ({mem.breakdown()} when fresh); "
                f"backends: nginx (the same configuration as the table's backend) and, for "
                "uploads, a counting sink (`python -m bench.extras sink`)."
            )
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            setup_error = f"setup failed: {_one_line(exc, 400)}"

        def with_proxyd(measure: Callable[[proxyd_target.Proxyd], Section]) -> Section:
            if proxyd is None:
                raise SetupFailed(setup_error)
            return measure(proxyd)

        def with_backend(measure: Callable[[], Section]) -> Section:
            if not backend_url:
                raise SetupFailed(setup_error)
            return measure()

        mib = _scaled(STREAM_MIB, scale, 1)
        extras.sections.append(
            _guarded(
                f"Streaming a {mib} MiB body",
                lambda: with_proxyd(
                    lambda p: measure_streaming(p, backend_url, files, sink_port, scale)
                ),
            )
        )
        with contextlib.suppress(OSError):
            (files / "stream.bin").unlink()
        count = _scaled(IDLE_PROXIES, scale, 10)
        extras.sections.append(
            _guarded(
                f"Idle RSS with {count:,} proxies",
                lambda: with_backend(lambda: measure_idle_proxies(stack, backend_url, scale)),
            )
        )
        total = _scaled(REQUESTS, scale, 1000)
        extras.sections.append(
            _guarded(
                f"RSS after {total:,} requests",
                lambda: with_proxyd(lambda p: measure_request_growth(p, backend_url, scale)),
            )
        )
        ws = _scaled(WEBSOCKETS, scale, 20)
        extras.sections.append(
            _guarded(
                f"{ws:,} concurrent idle WebSocket connections",
                lambda: with_proxyd(lambda p: measure_websockets(stack, p, scale)),
            )
        )
    finally:
        stack.close()
        extras.findings += stack.findings
        extras.seconds = time.monotonic() - started
    return extras


# --- helper backends (separate processes) ---------------------------------------------------


class _Reader:
    """Buffered reads from a trio stream for the sink's tiny HTTP/1.1 parser."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def _fill(self) -> None:
        data = await self.stream.receive_some(256 * 1024)
        if not data:
            raise EOFError
        self.buf += data

    async def until(self, sep: bytes, limit: int = 64 * 1024) -> bytes:
        while (end := self.buf.find(sep)) < 0:
            if len(self.buf) > limit:
                raise ValueError("header too long")
            await self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + len(sep)]
        return line

    async def discard(self, size: int) -> int:
        """Read and drop exactly `size` bytes; returns `size`."""
        left = size
        take = min(left, len(self.buf))
        del self.buf[:take]
        left -= take
        while left:
            data = await self.stream.receive_some(256 * 1024)
            if not data:
                raise EOFError
            if len(data) > left:
                self.buf += data[left:]
                left = 0
            else:
                left -= len(data)
        return size


async def _sink_connection(stream: trio.SocketStream) -> None:
    """Answer each request with 200 and the number of body bytes it carried."""
    reader = _Reader(stream)
    with contextlib.suppress(
        EOFError, ValueError, trio.BrokenResourceError, trio.ClosedResourceError
    ):
        while True:
            head = await reader.until(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip().lower()
            if headers.get(b"expect") == b"100-continue":
                await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            count = 0
            if b"content-length" in headers:
                count = await reader.discard(int(headers[b"content-length"]))
            elif b"chunked" in headers.get(b"transfer-encoding", b""):
                while True:
                    size = int((await reader.until(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        while await reader.until(b"\r\n"):
                            pass  # trailer fields, up to the empty line
                        break
                    count += await reader.discard(size)
                    await reader.until(b"\r\n")
            body = f"{count}\n".encode()
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            if headers.get(b"connection") == b"close":
                return


async def _ws_echo(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    with contextlib.suppress(trio_websocket.ConnectionClosed):
        while True:
            await ws.send_message(await ws.get_message())


async def _serve_ws_echo(port: int) -> None:
    await trio_websocket.serve_websocket(
        _ws_echo, LOOPBACK, port, None, max_message_size=16 * MIB, disconnect_timeout=5
    )


def main(argv: list[str] | None = None) -> int:
    """`sink PORT`, `ws-echo PORT` (helper backends) or `measure [--scale S]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("sink", "ws-echo"):
        sub.add_parser(name).add_argument("port", type=int)
    measure = sub.add_parser("measure", help="run only the extra measurements, print Markdown")
    measure.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    raise_file_limit()
    if args.command == "sink":
        trio.run(functools.partial(trio.serve_tcp, _sink_connection, args.port, host=LOOPBACK))
    elif args.command == "ws-echo":
        trio.run(_serve_ws_echo, args.port)
    else:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        tmp = Path(tempfile.mkdtemp(prefix="proxyd-extras-"))
        try:
            print(render_extras(measure_extras(tmp, args.scale)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
