"""`proxyd service ...` and `proxyd ports` against a proxyd that manages a real dockerd."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import trio
from graphql import build_schema, parse, validate

from proxyd.cli import docker_services, ports
from tests.support.docker import TEST_IMAGE
from tests.support.processes import ProxydProcess, free_port

ROOT = Path(__file__).resolve().parents[1]


def test_docker_cli_documents_match_the_schema() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    documents = [
        value
        for module in (docker_services, ports)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and ("query" in value or "mutation" in value)
    ]
    documents = [d.replace("%s", "startService") for d in documents]
    assert len(documents) >= 14
    for document in documents:
        assert validate(schema, parse(document)) == [], document


async def run(proxyd: ProxydProcess, token: str, *args: str) -> subprocess.CompletedProcess:
    result = await trio.to_thread.run_sync(partial(proxyd.cli, *args, env={"PROXYD_TOKEN": token}))
    assert token not in result.stdout + result.stderr
    return result


async def test_service_commands(start_proxyd, docker_daemon) -> None:
    proxyd = start_proxyd(DOCKER_HOST=docker_daemon.host, DOCKER_STOP_TIMEOUT="1")
    token = proxyd.token("admin")
    cli = partial(run, proxyd, token)
    host_port = free_port()
    created = await cli(
        "service",
        "create",
        "clisvc",
        TEST_IMAGE,
        "--memory",
        "48m",
        "--port",
        f"8080:{host_port}",
        "--auto-proxy",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == (
        f"created service clisvc (running), ports {host_port}->8080/tcp, proxy clisvc.localhost"
    )
    listing = (await cli("service", "list", "--type", "docker")).stdout.splitlines()
    assert listing[0].split() == ["NAME", "TYPE", "STATUS", "IMAGE", "TARGET", "HOST", "PORTS"]
    assert listing[1].split()[:3] == ["clisvc", "docker", "running"]
    shown = json.loads((await cli("service", "show", "clisvc", "--json")).stdout)
    assert shown["service"]["memoryLimit"] == "48m"

    allocated = (await cli("ports")).stdout.splitlines()
    assert allocated[1].split()[:5] == [str(host_port), "127.0.0.1", "tcp", "clisvc", "http"]

    check = await cli("service", "port", "check", str(host_port))
    assert check.returncode == 3
    assert "allocated to service clisvc" in check.stdout

    stopped = await cli("service", "stop", "clisvc")
    assert stopped.stdout.strip() == "stopped service clisvc: exited"
    logs = await cli("service", "logs", "clisvc", "--tail", "5")
    assert logs.returncode == 0

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        busy.listen()
        refused = await cli("service", "create", "other", TEST_IMAGE, "--port", f"8080:{taken}")
    assert refused.returncode == 1
    assert f"already uses tcp port {taken}" in refused.stderr and "(CONFLICT)" in refused.stderr

    # logs -f prints new lines as the container writes them.
    ticker = "while true; do echo tick; /bin/busybox sleep 0.2; done"
    made = await cli(
        "service", "create", "ticker", TEST_IMAGE, "--command", f"/bin/sh -c '{ticker}'"
    )
    assert made.returncode == 0, made.stderr
    command = [sys.executable, "-m", "proxyd", "service", "logs", "ticker", "-f", "--tail", "0"]
    env = {**proxyd.env, "PROXYD_TOKEN": token}

    def follow_three_lines() -> list[str]:
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as follower:
            deadline = threading.Timer(20, follower.kill)  # a hang ends as a failed assert
            deadline.start()
            try:
                return [follower.stdout.readline() for _ in range(3)]
            finally:
                deadline.cancel()
                follower.terminate()

    lines = await trio.to_thread.run_sync(follow_three_lines)
    assert [line.strip() for line in lines] == ["tick"] * 3
    await cli("service", "delete", "ticker")

    deleted = await cli("service", "delete", "clisvc", "--delete-proxy")
    assert deleted.stdout.strip() == "deleted service clisvc and its proxy"
    assert (await cli("ports")).stdout.strip() == "no ports allocated"
