"""/mcp with a real ACME CA (Pebble): create_certificate and renew_certificate send an MCP
progress notification for each stage of the order. And with two worker processes: one client
session keeps working whichever worker takes each request (stateless mode, new connection per
request)."""

from __future__ import annotations

import re

import pytest
import trio

from tests.support.mcp_client import mcp_session, mcp_token, tool_text
from tests.support.pebble import Pebble
from tests.support.processes import free_port


@pytest.fixture
def pebble(tmp_path_factory):
    server = Pebble(tmp_path_factory.mktemp("pebble"), free_port(), free_port())
    yield server
    server.stop()


async def test_certificate_order_reports_progress(start_proxyd, pebble):
    proc = start_proxyd("acme", **pebble.env())
    url = f"{proc.api_url}/mcp"
    token = mcp_token(proc, "admin", url)
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with mcp_session(url, token) as client:
        result = await client.call_tool(
            "create_certificate",
            {"name": "mcp-cert", "domains": ["mcp-cert.example.test"], "wait_seconds": 90},
            progress_callback=progress,
        )
        assert not result.is_error, tool_text(result)
        cert = result.structured_content
        assert cert["status"] == "active" and cert["order_stage"] == "ready", cert
        assert "Pebble" in cert["issuer"]
        assert "private_key_pem" not in cert and "fullchain_pem" not in cert
        stages = [m.split(":")[0] for _, _, m in seen]
        assert stages[0] == "queued" and stages[-1] == "ready", seen
        assert {"ordering", "validating", "finalizing"} <= set(stages), seen
        assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
        assert seen[-1][0] == seen[-1][1]  # done == total at the end

        seen.clear()
        renewed = await client.call_tool(
            "renew_certificate", {"name": "mcp-cert"}, progress_callback=progress
        )
        assert not renewed.is_error, tool_text(renewed)
        assert renewed.structured_content["order_stage"] == "ready"
        assert [m.split(":")[0] for _, _, m in seen][-1] == "ready"
        assert re.search(r"ready: .+", seen[-1][2])

        listed = await client.call_tool("list_certificates", {})
        assert [c["cert_name"] for c in listed.structured_content["certificates"]] == ["mcp-cert"]


async def test_two_workers_serve_one_session(start_proxyd, backend):
    proc = start_proxyd("workers", WORKERS="2")
    url = f"{proc.api_url}/mcp"
    token = mcp_token(proc, "admin", url)
    seen: set[str] = set()
    # One client session, a new connection per request: the kernel hands them to either worker.
    async with mcp_session(url, token, keepalive=False) as client:
        with trio.fail_after(30):
            n = 0
            while len(seen) < 2 or n < 4:
                made = await client.call_tool(
                    "create_proxy",
                    {"hostname": f"w{n}.mcp.test", "target_url": backend.url, "https": False},
                )
                assert not made.is_error, tool_text(made)
                health = await client.call_tool("health", {})
                assert not health.is_error, tool_text(health)
                seen.add(health.structured_content["instance"])
                shown = await client.call_tool("get_proxy", {"hostname": f"w{n}.mcp.test"})
                assert shown.structured_content["proxy"]["target_url"] == backend.url
                n += 1
        listed = await client.call_tool("list_proxies", {})
        hosts = {p["hostname"] for p in listed.structured_content["proxies"]}
        assert {f"w{i}.mcp.test" for i in range(n)} <= hosts
    assert all(name.endswith(("-w0", "-w1")) for name in seen), seen
