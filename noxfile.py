"""Developer tasks: `nox -s serve` runs proxyd, `nox -s tests` runs the test suite,
`nox -s lint` checks style, `nox -s bench` benchmarks against nginx on loopback."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

DEBIAN_TEST_PACKAGES = ["redis-server", "pebble", "chromium", "docker.io", "busybox-static"]
DEBIAN_BENCH_PACKAGES = ["redis-server", "nginx-light", "wrk", "nghttp2-client"]


def ensure_debian_packages(session: nox.Session, packages: list[str], binaries: list[str]) -> None:
    """Install missing Debian packages with apt-get when we are root; otherwise say what to do."""
    missing = [b for b in binaries if shutil.which(b) is None]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        session.log(f"installing {' '.join(packages)} with apt-get (missing: {', '.join(missing)})")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-qq", external=True, env=env)
        session.run("apt-get", "install", "-y", "-qq", *packages, external=True, env=env)
        return
    session.error(
        f"{', '.join(missing)} not found: install {' '.join(packages)} "
        f"(Debian/Ubuntu: sudo apt-get install {' '.join(packages)})"
    )


@nox.session
def serve(session: nox.Session) -> None:
    """Run proxyd with the embedded redis-server (settings from the environment and .env)."""
    ensure_debian_packages(session, ["redis-server"], ["redis-server"])
    session.install("-e", ".")
    session.run("proxyd", "serve", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against real Redis and real proxyd processes."""
    ensure_debian_packages(
        session,
        DEBIAN_TEST_PACKAGES,
        ["redis-server", "pebble", "pebble-challtestsrv", "chromium", "dockerd", "busybox"],
    )
    session.install("-e", ".[test]")
    # pytest exits 5 when it collects no tests; nox fails on any non-zero exit, so an empty
    # run can never pass silently.
    session.run("pytest", *(session.posargs or ["-q", "-ra"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff with its default rules, and ruff's formatter in check mode."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark proxyd against the direct backend and nginx on loopback; rewrites BENCHMARKS.md."""
    ensure_debian_packages(session, DEBIAN_BENCH_PACKAGES, ["redis-server", "nginx", "wrk"])
    session.install("-e", ".")
    session.run("python", "bench/run.py", *session.posargs)
