"""Shared fixtures: a real redis-server per session (flushed per test), real proxyd processes,
tokens, a GraphQL client and an in-loop backend server."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.backend import start_backend
from tests.support.graphql import GraphQLClient
from tests.support.processes import ProxydProcess, RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def start_proxyd(tmp_path: Path, redis_url: str):
    """Factory: start_proxyd(name="a", **env) -> a running ProxydProcess (stopped at teardown)."""
    started: list[ProxydProcess] = []

    def start(name: str = "proxyd", redis: str | None = redis_url, **env: str) -> ProxydProcess:
        proc = ProxydProcess(tmp_path / name, redis, **env)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def proxyd(start_proxyd) -> ProxydProcess:
    return start_proxyd()


@pytest.fixture
def admin_token(proxyd: ProxydProcess) -> str:
    return proxyd.token("admin")


@pytest.fixture
def user_token(proxyd: ProxydProcess) -> str:
    return proxyd.token("user")


@pytest.fixture
def gql(proxyd: ProxydProcess, admin_token: str) -> GraphQLClient:
    return GraphQLClient(proxyd.api_url, admin_token, proxyd.http_url)


@pytest.fixture
async def backend(nursery):
    server = await start_backend(nursery)
    yield server
    server.shutdown.set()


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory):
    """A private dockerd (own data root, exec root and socket) with the busybox test image."""
    from tests.support.docker import DockerDaemon

    # Not under pytest's basetemp: concurrent pytest runs of one user rotate those directories.
    workdir = Path(tempfile.mkdtemp(prefix="proxyd-dockerd-"))
    daemon = DockerDaemon(workdir)
    try:
        daemon.build_test_image()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)
