"""Benchmark proxyd against nginx on loopback and rewrite BENCHMARKS.md (`nox -s bench`).

Starts an nginx backend, nginx as a reverse proxy, and proxyd (with its own redis-server), runs
wrk against each, and writes the table. Every process it starts is stopped on exit, error or
Ctrl-C. Run `python bench/run.py --help` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):
    # Run as `python bench/run.py`: make `import bench` work from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import extras, nginx, proxyd_target, report
from bench import tls as bench_tls
from bench.procs import LOOPBACK, free_port
from bench.report import Row
from bench.wrk import LoadResult, h2load_available, run_h2load, run_wrk

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_HOST = "bench.local"
OAUTH_HOST = "oauth.local"  # the same backend behind an OAuth-protected proxy
HTTPS_HOST = "secure.local"  # the same backend over HTTPS (wrk resolves it via bench/tls.py)
HEADERS = {"Host": BENCH_HOST}
# A 1-minute load average above this when the run starts means other work competed for the CPU.
BUSY_LOAD = 0.5
# More failed requests (non-2xx, socket errors) than this share of a run fails the benchmark.
MAX_ERROR_SHARE = 0.01

# proxyd with request logging off and on are measured alternately this many times each.
LOGGING_ROUNDS = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`nox -s bench -- --duration 5 --connections 10`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=10, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument(
        "--create-repeats", type=int, default=5, help="createProxy-to-first-200 measurements"
    )
    parser.add_argument(
        "--h2load",
        choices=("auto", "on", "off"),
        default="auto",
        help="extra cleartext HTTP/2 runs with h2load (auto: when h2load is installed)",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="file to rewrite"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, leave the file")
    parser.add_argument("--skip-proxyd", action="store_true", help="measure only the nginx rows")
    parser.add_argument("--skip-extras", action="store_true", help="skip bench/extras.py")
    parser.add_argument(
        "--extras-scale", type=float, default=1.0, help="shrink extras' sizes/counts, e.g. 0.05"
    )
    parser.add_argument(
        "--keep-tmp", action="store_true", help="keep the temporary directory (configs, logs)"
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --connections and --threads must be >= 1, --warmup >= 0")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads (wrk needs one per thread)")
    if not args.extras_scale > 0:
        parser.error("--extras-scale must be > 0")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _version(argv: list[str], pattern: str) -> str:
    """The version a tool prints, e.g. `nginx/1.22.1`, `wrk 4.1.0`; "unknown" if not found."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(0) if found else "unknown"


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message squeezed onto one table-safe line."""
    text = " ".join(str(exc).split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _check_result(row: Row) -> None:
    """Flag rows whose numbers include failed requests (they would flatter the target)."""
    res = row.result
    if res is None:
        return
    if res.non_2xx:
        row.warnings.append(f"⚠ {res.non_2xx} non-2xx/3xx answers")
    bad = {k: v for k, v in res.socket_errors.items() if v}
    if bad:
        row.warnings.append("⚠ errors: " + ", ".join(f"{k} {v}" for k, v in bad.items()))


def settle(proxyd: proxyd_target.Proxyd, idle: float = 0.05, timeout: float = 30.0) -> float:
    """Wait until proxyd's processes (its log writer included) use less than `idle` of a core
    over half a second, at most `timeout` seconds; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = extras.tree_cpu_seconds(proxyd.proc.pid)
        time.sleep(0.5)
        if extras.tree_cpu_seconds(proxyd.proc.pid) - before < idle * 0.5:
            break
    waited = time.monotonic() - started
    if waited > 1:
        print(f"  waited {waited:.1f} s for the log writer to finish", flush=True)
    return waited


class Bench:
    """One benchmark run: the daemons it started and the rows it measured."""

    def __init__(self, args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.tmp = tmp
        self.stack = stack
        self.failures: list[str] = []
        self.backend_port = 0
        self.backend_h2c_port = 0
        self.nginx_port = 0
        self.nginx_h2c_port = 0
        self.proxyd: proxyd_target.Proxyd | None = None
        # The same proxyd with REQUEST_LOGGING=true, on the same Redis (the plain one has it off).
        self.proxyd_logging: proxyd_target.Proxyd | None = None
        self.oauth_token = ""  # "Bearer ..." for the OAuth-protected proxy row
        self.https_skip = bench_tls.https_possible()  # why HTTPS rows cannot run, or ""
        self.nginx_tls_port = 0
        self.proxyd_tls_port = 0
        self.hosts_file = self.tmp / "hosts"
        self.proxyd_error = ""
        self.create_timing: proxyd_target.CreateTiming | None = None
        self.create_timings: list[proxyd_target.CreateTiming] = []
        self.load_before = os.getloadavg()[0]
        self.use_h2load = args.h2load == "on" or (args.h2load == "auto" and h2load_available())
        if args.h2load == "on" and not h2load_available():
            raise RuntimeError("--h2load on, but h2load is missing: apt-get install nghttp2-client")

    # --- daemons -------------------------------------------------------------------------

    def start_nginx(self) -> None:
        """Start the backend nginx and the nginx reverse proxy in front of it."""
        self.backend_port = free_port()
        self.backend_h2c_port = free_port() if self.use_h2load else 0
        backend = nginx.start_backend(
            self.tmp / "backend", self.backend_port, self.backend_h2c_port or None
        )
        self.stack.callback(backend.stop)
        self.nginx_port = free_port()
        self.nginx_h2c_port = free_port() if self.use_h2load else 0
        tls_files = None
        if not self.https_skip:
            self.nginx_tls_port = free_port()
            cert, key = bench_tls.self_signed(self.tmp / "nginx-tls", HTTPS_HOST)
            tls_files = (self.nginx_tls_port, cert, key)
            self.hosts_file.write_text(f"127.0.0.1 localhost {HTTPS_HOST}\n")
        proxy = nginx.start_proxy(
            self.tmp / "nginx-proxy",
            self.nginx_port,
            self.backend_port,
            self.nginx_h2c_port or None,
            tls_files,
        )
        self.stack.callback(proxy.stop)
        for port in (self.backend_port, self.nginx_port):
            status = proxyd_target.http_status(port, BENCH_HOST)
            if status != 200:
                raise RuntimeError(f"nginx on port {port} answered {status}, expected 200")

    @property
    def backend_url(self) -> str:
        return f"http://{LOOPBACK}:{self.backend_port}"

    def start_proxyd(self) -> None:
        """Start redis-server and proxyd, issue an admin token, create the bench.local proxy."""
        redis, redis_port = proxyd_target.start_redis(self.tmp / "redis")
        self.stack.callback(redis.stop)
        self.proxyd_tls_port = free_port()
        proxyd = proxyd_target.start_proxyd(
            self.tmp / "proxyd",
            redis_port,
            REQUEST_LOGGING="false",
            HTTPS_PORT=str(self.proxyd_tls_port),
            # The HTTPS proxy keeps its self-signed certificate: no ACME order leaves loopback.
            ACME_DIRECTORY_URL=f"http://{LOOPBACK}:9/directory",
        )
        self.stack.callback(proxyd.proc.stop)
        logging_on = proxyd_target.start_proxyd(
            self.tmp / "proxyd-logging", redis_port, REQUEST_LOGGING="true"
        )
        self.stack.callback(logging_on.proc.stop)
        self.proxyd_logging = logging_on
        self.proxyd = proxyd
        proxyd.issue_admin_token()
        timing = proxyd_target.time_create_to_first_200(proxyd, self.backend_url, BENCH_HOST)
        token = proxyd.create_protected_proxy(OAUTH_HOST, self.backend_url)
        if not self.https_skip:
            proxyd.create_https_proxy(HTTPS_HOST, self.backend_url)
        self.oauth_token = f"Bearer {token}"
        print(
            f"created {BENCH_HOST} -> {self.backend_url} (first 200 after "
            f"{timing.first_200_ms:.1f} ms)"
        )

    def measure_create_to_first_200(self) -> None:
        """createProxy for fresh hostnames, polling each until the first 200; keep the median."""
        assert self.proxyd is not None
        for i in range(self.args.create_repeats):
            hostname = f"fresh{i}-{os.getpid()}.local"
            timing = proxyd_target.time_create_to_first_200(self.proxyd, self.backend_url, hostname)
            print(
                f"  {hostname}: mutation {timing.mutation_ms:.1f} ms, first 200 after "
                f"{timing.first_200_ms:.1f} ms ({timing.polls} polls)"
            )
            self.create_timings.append(timing)
        if self.create_timings:
            self.create_timing = proxyd_target.median_create_timing(self.create_timings)

    # --- load ----------------------------------------------------------------------------

    def wrk(self, label: str, url: str, headers: dict[str, str] | None = None) -> LoadResult:
        """A warm-up wrk run (discarded), then the measured one."""
        a = self.args
        headers = headers or HEADERS
        if a.warmup:
            run_wrk(url, a.warmup, a.connections, a.threads, headers)
        print(f"wrk {label}: {url} for {a.duration} s ...", flush=True)
        result = run_wrk(url, a.duration, a.connections, a.threads, headers)
        print(f"  {result.summary()}", flush=True)
        return result

    def h2load(self, label: str, url: str) -> LoadResult:
        """A warm-up h2load run (discarded), then the measured one; cleartext HTTP/2."""
        a = self.args
        if a.warmup:
            run_h2load(url, a.warmup, a.connections, headers=HEADERS)
        print(f"h2load {label}: {url} for {a.duration} s ...", flush=True)
        result = run_h2load(url, a.duration, a.connections, headers=HEADERS)
        print(f"  {result.summary()}", flush=True)
        return result

    def _measure(self, row: Row, measure: Callable[[], LoadResult]) -> Row:
        try:
            row.result = measure()
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            row.note = f"failed: {_one_line(exc)}"
            self.failures.append(f"{row.label}: {exc}")
            print(f"  {row.note}", file=sys.stderr)
        _check_result(row)
        res = row.result
        if res is not None and res.error_count > MAX_ERROR_SHARE * max(res.total_requests, 1):
            # Fast error answers would make a target look good: do not publish such a run.
            self.failures.append(f"{row.label}: {res.error_count} failed requests\n{res.raw}")
        return row

    def measure_all(self) -> list[Row]:
        """The HTTP/1.1 rows, in table order. Add new measured rows here."""
        rows = [
            self._measure(
                Row("direct", "backend directly (nginx)"),
                lambda: self.wrk("direct", f"{self.backend_url}/"),
            ),
            self._measure(
                Row("nginx", "nginx reverse proxy"),
                lambda: self.wrk("nginx proxy", f"http://{LOOPBACK}:{self.nginx_port}/"),
            ),
        ]
        proxyd_row = Row("proxyd", "proxyd plain proxy (request logging off)")
        logging_row = Row("proxyd_logging", "proxyd, request logging on")
        if self.proxyd is not None and self.proxyd_logging is not None:
            proxyd, logging_on = self.proxyd, self.proxyd_logging
            # Logging off and on alternate (LOGGING_ROUNDS runs each) and each row keeps its
            # median run, so load from other processes hits both sides alike.
            runs: dict[str, list[LoadResult]] = {"off": [], "on": []}
            for _ in range(LOGGING_ROUNDS):
                runs["off"].append(self.wrk("proxyd", f"{proxyd.http_url}/"))
                runs["on"].append(self.wrk("proxyd logging", f"{logging_on.http_url}/"))
                # The log writer may still be writing that run's records: the next row must not
                # pay for them.
                settle(logging_on)
            for row, key in ((proxyd_row, "off"), (logging_row, "on")):
                ordered = sorted(runs[key], key=lambda r: r.requests_per_sec)
                rows.append(self._measure(row, lambda o=ordered: o[len(o) // 2]))
            on, off = logging_row.result, proxyd_row.result
            if on and off and off.requests_per_sec > 0:
                cost = 1 - on.requests_per_sec / off.requests_per_sec
                logging_row.note = f"logging cost {cost:+.1%} req/s vs logging off"
        else:
            proxyd_row.note = self.proxyd_error or "skipped (--skip-proxyd)"
            logging_row.note = proxyd_row.note
            rows += [proxyd_row, logging_row]
        oauth_row = Row("proxyd_oauth", "proxyd, OAuth-protected proxy (valid bearer token)")
        if self.proxyd is not None and self.oauth_token:
            proxyd, auth = self.proxyd, {"Host": OAUTH_HOST, "Authorization": self.oauth_token}
            rows.append(
                self._measure(
                    oauth_row, lambda: self.wrk("proxyd oauth", f"{proxyd.http_url}/", auth)
                )
            )
        else:
            oauth_row.note = self.proxyd_error or "skipped (--skip-proxyd)"
            rows.append(oauth_row)
        rows += self.measure_https()
        return rows

    def measure_https(self) -> list[Row]:
        """nginx and proxyd terminating TLS (self-signed ECDSA certificates, HTTP/1.1)."""
        nginx_row = Row("nginx_https", "nginx reverse proxy, HTTPS")
        proxyd_row = Row("proxyd_https", "proxyd plain proxy, HTTPS")
        if self.https_skip:
            nginx_row.note = proxyd_row.note = f"not measured: {self.https_skip}"
            return [nginx_row, proxyd_row]
        rows = [
            self._measure(nginx_row, lambda: self.wrk_https(nginx_row.label, self.nginx_tls_port))
        ]
        if self.proxyd is not None:
            rows.append(
                self._measure(
                    proxyd_row, lambda: self.wrk_https(proxyd_row.label, self.proxyd_tls_port)
                )
            )
        else:
            proxyd_row.note = self.proxyd_error or "skipped (--skip-proxyd)"
            rows.append(proxyd_row)
        return rows

    def wrk_https(self, label: str, port: int) -> LoadResult:
        """wrk over TLS to https://HTTPS_HOST:port/ (SNI = HTTPS_HOST, resolved to 127.0.0.1)."""
        a = self.args
        url = f"https://{HTTPS_HOST}:{port}/"
        if a.warmup:
            bench_tls.run_wrk_resolving(url, self.hosts_file, a.warmup, a.connections, a.threads)
        print(f"wrk {label}: {url} for {a.duration} s ...", flush=True)
        result = bench_tls.run_wrk_resolving(
            url, self.hosts_file, a.duration, a.connections, a.threads
        )
        print(f"  {result.summary()}", flush=True)
        return result

    def measure_h2(self) -> list[Row]:
        """Optional cleartext HTTP/2 (h2c, prior knowledge) rows with h2load."""
        rows = [
            self._measure(
                Row("direct", "backend directly (nginx), h2c"),
                lambda: self.h2load("direct", f"http://{LOOPBACK}:{self.backend_h2c_port}/"),
            ),
            self._measure(
                Row("nginx", "nginx reverse proxy, h2c in, HTTP/1.1 upstream"),
                lambda: self.h2load("nginx proxy", f"http://{LOOPBACK}:{self.nginx_h2c_port}/"),
            ),
        ]
        if self.proxyd is not None:
            proxyd = self.proxyd
            row = self._measure(
                Row("proxyd", "proxyd plain proxy, h2c"),
                lambda: self.h2load("proxyd", f"{proxyd.http_url}/"),
            )
            if row.result is None:
                # h2c to proxyd is a nice-to-have; do not fail the whole run for it.
                self.failures.pop()
            rows.append(row)
        return rows


def render(bench: Bench, rows: list[Row], h2_rows: list[Row], args: argparse.Namespace) -> str:
    """The generated part of BENCHMARKS.md."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    wrk_cmd = (
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency "
        f"-H 'Host: {BENCH_HOST}'"
    )
    busy = (
        " (**the machine was busy: numbers are lower than on an idle one**)"
        if bench.load_before > BUSY_LOAD
        else ""
    )
    software = ", ".join(
        [
            _version([nginx.nginx_binary(), "-v"], r"nginx/[\w.]+"),
            "wrk " + _version(["wrk", "-v"], r"\d+\.\d+\.\d+"),
            "redis-server " + _version(["redis-server", "--version"], r"(?<=v=)[\w.]+"),
        ]
    )
    parts = [
        "# proxyd benchmarks",
        "",
        (
            "<!-- Generated by `nox -s bench` (bench/run.py). Everything above the bench:end marker "
            "is rewritten on each run; write notes below it. -->"
        ),
        "",
        f"- Date: {now}",
        f"- Cores: {os.cpu_count()} (`os.cpu_count()`), {_cpu_model()}",
        (
            "- Machine: the load generator and every server share these cores on one machine, all "
            "traffic on loopback (127.0.0.1). Absolute numbers are pessimistic and noisy; compare "
            "rows of the same run. 1-minute load average when the run started: "
            f"{bench.load_before:.2f}{busy}."
        ),
        (
            f"- Software: {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, {software}"
        ),
        (
            f"- Load: `{wrk_cmd} http://127.0.0.1:PORT/` per target, after a {args.warmup} s "
            "warm-up run that is discarded."
        ),
        '- Backend: nginx, `worker_processes 1`, `return 200 "hello\\n"`, access log off.',
        (
            "- nginx reverse proxy: `worker_processes 1`, upstream `keepalive 64`, "
            '`proxy_http_version 1.1`, `proxy_set_header Connection ""`, access log off.'
        ),
        (
            "- proxyd: `python -m proxyd serve`, LOG_LEVEL=WARNING, "
            "EDGE_MAX_REQUESTS_PER_CONNECTION=1000000 (as nginx's `keepalive_requests` here), "
            "its own redis-server (no persistence), proxy created with "
            "`createProxy(enableHttps: false)`."
        ),
        "",
        "## HTTP/1.1 throughput and latency",
        "",
        report.render_table(rows),
        "",
        (
            "`vs nginx proxy` and `vs direct` are req/s ratios; `p50 over direct` is the median "
            "latency the proxy adds to a request to the backend directly."
        ),
        "",
        "## Time from createProxy to the first 200",
        "",
    ]
    timing = bench.create_timing
    if timing is not None:
        all_ms = ", ".join(f"{t.first_200_ms:.1f}" for t in bench.create_timings)
        parts += [
            (
                f"Median of {len(bench.create_timings)}: **{timing.first_200_ms:.1f} ms** from "
                "sending the `createProxy` mutation to the first `200` through the new proxy "
                f"(the mutation itself answered after {timing.mutation_ms:.1f} ms; then a new "
                f"loopback connection per poll, as fast as possible). All runs: {all_ms} ms."
            ),
        ]
    else:
        parts.append(f"Not measured: {bench.proxyd_error or 'proxyd skipped'}.")
    parts += ["", "## Cleartext HTTP/2 (h2load)", ""]
    if h2_rows:
        parts += [
            (
                f"`h2load -t1 -c{args.connections} -m1 -D{args.duration}` with prior knowledge "
                "(h2c). h2load reports no percentiles; the latency column is its mean."
            ),
            "",
            report.render_h2_table(h2_rows),
        ]
    else:
        parts.append(
            "Skipped: h2load (Debian package nghttp2-client) is not installed "
            "or `--h2load off` was given."
        )
    parts += [
        "",
        "## How to run",
        "",
        (
            "`nox -s bench` (for example `nox -s bench -- --duration 5 --connections 10`; "
            "see `python bench/run.py --help`). Needs the Debian packages nginx-light, wrk, "
            "redis-server and, optionally, nghttp2-client (h2load)."
        ),
        "",
    ]
    return "\n".join(parts)


def run(args: argparse.Namespace, tmp: Path) -> int:
    """Start everything, measure, report; the ExitStack stops the daemons in reverse order."""
    with contextlib.ExitStack() as stack:
        bench = Bench(args, tmp, stack)
        if bench.load_before > BUSY_LOAD:
            print(
                f"warning: load average {bench.load_before:.2f} before the run; other "
                "processes compete for the CPU and the numbers will be low and noisy"
            )
        bench.start_nginx()
        if not args.skip_proxyd:
            try:
                bench.start_proxyd()
                print(f"createProxy -> first 200, {args.create_repeats} hostnames:")
                bench.measure_create_to_first_200()
            except (RuntimeError, TimeoutError, OSError) as exc:
                bench.proxyd_error = f"failed: {_one_line(exc)}"
                bench.failures.append(f"proxyd: {exc}")
                bench.proxyd = None
                print(f"proxyd could not be benchmarked:\n{exc}", file=sys.stderr)
        rows = bench.measure_all()
        h2_rows = bench.measure_h2() if bench.use_h2load else []
        if not bench.use_h2load:
            print("h2load runs skipped (h2load not installed or --h2load off)")
        text = render(bench, rows, h2_rows, args)
        if not (args.skip_extras or args.skip_proxyd):
            text += "\n" + extras.render_extras(
                extras.measure_extras(tmp / "extras", args.extras_scale)
            )

    print()
    print(report.render_table(rows))
    if h2_rows:
        print()
        print(report.render_h2_table(h2_rows))
    if bench.create_timing is not None:
        print(
            f"\ncreateProxy -> first 200: median {bench.create_timing.first_200_ms:.1f} ms "
            f"(mutation {bench.create_timing.mutation_ms:.1f} ms)"
        )
    if bench.failures:
        print(f"\n{len(bench.failures)} failure(s); {args.output} left unchanged:", file=sys.stderr)
        for failure in bench.failures:
            print(f"- {failure}", file=sys.stderr)
        return 1
    if args.no_write:
        print(f"\n--no-write: {args.output} left unchanged")
    else:
        report.write_benchmarks(args.output, text)
        print(f"\nwrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse options, run in a temporary directory, always clean up."""
    args = parse_args(argv)
    # SIGTERM/SIGHUP (CI cancelling, a closed terminal) unwind like Ctrl-C, so cleanup runs.
    # SIGINT explicitly too: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="proxyd-bench-"))
    try:
        return run(args, tmp)
    except KeyboardInterrupt:
        print("\ninterrupted; all benchmark processes stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"bench finished in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
