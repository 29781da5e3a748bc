"""The private dockerd fixture: its socket answers and the locally built image serves its page."""

from __future__ import annotations

import time

import httpx

from tests.support.docker import INDEX_HTML, TEST_IMAGE
from tests.support.processes import free_port


def test_private_dockerd_runs_the_imported_busybox_image(docker_daemon):
    port = free_port()
    name = f"fixture-probe-{port}"
    docker_daemon.cli("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", TEST_IMAGE)
    try:
        for _ in range(50):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert response.text == INDEX_HTML
    finally:
        docker_daemon.cli("rm", "-f", name)
