"""The proxyd process: several processes sharing one Redis, the embedded redis-server (persistence,
restart, missing binary), graceful stop on signals, and clear startup errors."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.processes import ProxydProcess


async def served_by(proc: ProxydProcess, host: str) -> int | None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(proc.http_url + "/", headers={"Host": host})
    return response.json()["backend"] if response.status_code == 200 else None


async def eventually(check, timeout: float = 3.0) -> None:
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.02)


async def test_two_processes_sharing_redis_both_serve_changes_from_either(start_proxyd, backend):
    first = start_proxyd("first")
    second = start_proxyd("second")
    gql_first = GraphQLClient(first.api_url, first.token("admin"))
    gql_second = GraphQLClient(second.api_url, second.token("admin"))

    await gql_first(CREATE_PROXY, {"input": {"hostname": "a.test", "targetUrl": backend.url}})
    await gql_second(CREATE_PROXY, {"input": {"hostname": "b.test", "targetUrl": backend.url}})
    for proc in (first, second):
        for host in ("a.test", "b.test"):

            async def ok(proc=proc, host=host):
                return await served_by(proc, host) == backend.port

            await eventually(ok)
    await gql_second('mutation { deleteProxy(hostname: "a.test") }')

    async def gone():
        return await served_by(first, "a.test") is None

    await eventually(gone)


async def test_restart_keeps_configuration_in_embedded_redis(start_proxyd, backend):
    proc = start_proxyd("embedded", redis=None)
    assert (proc.data_dir / "redis" / "redis.sock").exists()
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "keep.test", "targetUrl": backend.url}})
    await gql(
        'mutation { createRoute(input: {routeId: "kept", pathPattern: "/k", '
        'targetType: "port", targetValue: "1234"}) { routeId } }'
    )
    assert proc.stop() == 0
    proc.start()
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    data = await gql("{ proxies { hostname } routes { routeId } }")
    assert "keep.test" in [p["hostname"] for p in data["proxies"]]
    assert "kept" in [r["routeId"] for r in data["routes"]]
    assert await served_by(proc, "keep.test") == backend.port


async def test_embedded_redis_is_restarted_when_it_dies(start_proxyd, backend):
    proc = start_proxyd("phoenix", redis=None)
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "phoenix.test", "targetUrl": backend.url}})

    async def serving():
        return await served_by(proc, "phoenix.test") == backend.port

    await eventually(serving)  # applied before Redis dies (a kill can lose the last second)
    pid = _redis_pids(proc)[0]
    os.kill(pid, signal.SIGKILL)

    async def api_back():
        try:
            data = await gql("{ proxies { hostname } }")
        except (AssertionError, httpx.HTTPError):
            return False
        return "phoenix.test" in [p["hostname"] for p in data["proxies"]]

    await eventually(api_back, timeout=15)
    assert await served_by(proc, "phoenix.test") == backend.port
    assert "embedded redis-server exited" in proc.log()


async def test_sigint_and_sigterm_drain_and_exit_zero_quickly(start_proxyd):
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = start_proxyd(f"stop-{sig.name}", redis=None)
        started = time.monotonic()
        assert proc.stop(sig) == 0
        assert time.monotonic() - started < 10
        assert "proxyd stopped" in proc.log()
        # the embedded redis-server went down with it
        assert not _redis_pids(proc)


def _redis_pids(proc: ProxydProcess) -> list[int]:
    """PIDs of the embedded redis-server of proc (found through /proc, no blocking calls)."""
    needle = f"{proc.data_dir}/redis/redis.sock".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _run_serve(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYD_", "REDIS_"))}
    return subprocess.run(  # noqa: PLW1510 - the tests check the exit code
        [sys.executable, "-m", "proxyd", "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**base, "PROXYD_DATA_DIR": str(tmp_path / "data"), "HTTPS_PORT": "0", **env},
        timeout=60,
    )


def test_missing_redis_server_says_how_to_install_it(tmp_path):
    python_dir = os.path.dirname(sys.executable)
    result = _run_serve(tmp_path, PATH=python_dir, HTTP_PORT="0", API_PORT="0")
    assert result.returncode == 1
    assert "redis-server is not installed" in result.stderr
    assert "apt-get install redis-server" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path, redis_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run_serve(tmp_path, REDIS_URL=redis_url, HTTP_PORT="0", API_PORT=str(port))
    assert result.returncode == 1
    assert f"the API address 127.0.0.1:{port} is already in use; set API_PORT" in result.stderr


def test_unreachable_redis_is_a_clear_error(tmp_path):
    result = _run_serve(tmp_path, REDIS_URL="redis://127.0.0.1:1/0", HTTP_PORT="0", API_PORT="0")
    assert result.returncode == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.stderr


def test_redis_server_binary_is_present_for_these_tests():
    assert shutil.which("redis-server"), "install redis-server (see README)"


async def test_workers_share_the_sockets_and_every_worker_applies_changes(start_proxyd, backend):
    proc = start_proxyd("workers", WORKERS="2")
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "many.test", "targetUrl": backend.url}})
    seen: set[str] = set()
    with trio.fail_after(20):
        while len(seen) < 2:
            # New connections each time, so the kernel hands them to either worker.
            async with httpx.AsyncClient() as client:
                health = await client.get(proc.api_url + "/health")
                seen.add(health.json()["instance"])
                proxied = await client.get(proc.http_url, headers={"Host": "many.test"})
                assert proxied.json()["backend"] == backend.port
    assert all(name.endswith(("-w0", "-w1")) for name in seen), seen

    # A worker that dies is replaced.
    worker_pids = _worker_pids(proc.process.pid)
    os.kill(worker_pids[0], signal.SIGKILL)

    async def still_serving():
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(proc.http_url, headers={"Host": "many.test"})
        except httpx.HTTPError:
            return False  # a connection the killed worker had accepted
        return response.status_code == 200 and len(_worker_pids(proc.process.pid)) == 2

    await eventually(still_serving, timeout=15)
    assert "worker 0 exited" in proc.log() or "worker 1 exited" in proc.log()
    assert proc.stop() == 0


def _child_pids(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                        children.append(int(entry))
            except (OSError, ValueError):
                continue
    return children


def _worker_pids(parent: int) -> list[int]:
    """The supervisor's children that are workers (not redis-server, not the log writer)."""
    return [
        p
        for p in _child_pids(parent)
        if "redis" not in _cmdline(p) and "proxyd.logs.sink" not in _cmdline(p)
    ]


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


async def test_killed_supervisor_leaves_nothing_that_blocks_a_restart(start_proxyd, backend):
    proc = start_proxyd("crashy", redis=None, WORKERS="2")
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "survivor.test", "targetUrl": backend.url}})
    workers = _worker_pids(proc.process.pid)
    assert len(workers) == 2
    os.kill(proc.process.pid, signal.SIGKILL)  # no chance to stop its children
    proc.process.wait()

    async def workers_gone():
        return not any(os.path.exists(f"/proc/{pid}") for pid in workers)

    await eventually(workers_gone, timeout=15)  # they notice the supervisor is gone and exit
    proc.start()  # the orphaned embedded redis-server is stopped and replaced
    assert "stopped an orphaned embedded redis-server" in proc.log()
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    data = await gql("{ proxies { hostname } }")
    assert "survivor.test" in [p["hostname"] for p in data["proxies"]]
