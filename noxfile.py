"""Developer tasks: `nox -s serve` runs proxyd, `nox -s tests` runs the test suite,
`nox -s lint` checks style, `nox -s bench` benchmarks against nginx on loopback, `nox -s web`
builds the web UI (serve and tests build it too when it is missing or older than its sources)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
WEB_BUILD = ROOT / "proxyd" / "api" / "web_dist" / "index.html"
WEB_SOURCES = [
    "src",
    "public",
    "index.html",
    "graphiql.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
]


def _newest_mtime(paths: list[Path]) -> float:
    newest = 0.0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        for file in files:
            if file.is_file() and file.name != "graphql-env.d.ts":
                newest = max(newest, file.stat().st_mtime)
    return newest


def web_build_is_stale() -> bool:
    if not WEB_BUILD.is_file():
        return True
    sources = [WEB / name for name in WEB_SOURCES] + [ROOT / "schema.graphql"]
    return _newest_mtime(sources) > WEB_BUILD.stat().st_mtime


def npm_ci(session: nox.Session) -> None:
    """node and npm (apt-get as root on Debian), then `npm ci` when node_modules is stale."""
    ensure_debian_packages(session, ["nodejs", "npm"], ["node", "npm"])
    marker = WEB / "node_modules" / ".package-lock.json"
    lock = WEB / "package-lock.json"
    if not marker.is_file() or marker.stat().st_mtime < lock.stat().st_mtime:
        session.run("npm", "ci", "--no-audit", "--no-fund", external=True)


def build_web(session: nox.Session, force: bool = False) -> None:
    """`npm ci && npm run build` in web/ when the build is missing or older than its sources."""
    if not force and not web_build_is_stale():
        session.log("web UI build is up to date")
        return
    with session.chdir(WEB):
        npm_ci(session)
        session.run("npm", "run", "build", external=True)


@nox.session(venv_backend="none")
def web(session: nox.Session) -> None:
    """Build the web UI into proxyd/api/web_dist/ (always)."""
    build_web(session, force=True)


@nox.session
def serve(session: nox.Session) -> None:
    """Run proxyd with the embedded redis-server (settings from the environment and .env)."""
    ensure_debian_packages(session, ["redis-server"], ["redis-server"])
    build_web(session)
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
    build_web(session)
    session.install("-e", ".[test]")
    # pytest exits 5 when it collects no tests; nox fails on any non-zero exit, so an empty
    # run can never pass silently.
    session.run("pytest", *(session.posargs or ["-q", "-ra"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff with its default rules, ruff's formatter in check mode, and the web UI's lint
    (operations checked against schema.graphql, eslint, tsc)."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    with session.chdir(WEB):
        npm_ci(session)
        session.run("npm", "run", "lint", external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark proxyd against the direct backend and nginx on loopback; rewrites BENCHMARKS.md."""
    ensure_debian_packages(session, DEBIAN_BENCH_PACKAGES, ["redis-server", "nginx", "wrk"])
    session.install("-e", ".")
    session.run("python", "bench/run.py", *session.posargs)
