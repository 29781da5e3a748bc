"""proxyd's own MCP endpoint (/mcp on API_PORT) driven by the official MCP SDK client with
tokens from `proxyd token issue --audience <the /mcp URL>`: tools with schemas and annotations,
proxies created through MCP serve traffic at once and their requests are found in the logs,
scopes (user can list, not create or delete), audience binding, RFC 9728 metadata, resources.
"""

from __future__ import annotations

import json

import httpx
import trio

from tests.support.mcp_client import mcp_session, mcp_token, tool_text
from tests.support.processes import RedisServer, free_port


async def test_tools_create_proxy_traffic_and_logs(proxyd, backend):
    url = f"{proxyd.api_url}/mcp"
    token = mcp_token(proxyd, "admin", url)
    async with mcp_session(url, token) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("list_proxies", "create_proxy", "delete_proxy", "search_request_logs"):
            assert tools[name].input_schema["type"] == "object"
            assert tools[name].output_schema is not None
        assert "ctx" not in tools["create_proxy"].input_schema["properties"]
        assert tools["list_proxies"].annotations.read_only_hint is True
        assert tools["delete_proxy"].annotations.destructive_hint is True
        assert tools["create_proxy"].annotations.read_only_hint is False
        assert tools["update_proxy"].annotations.idempotent_hint is True

        created = await client.call_tool(
            "create_proxy",
            {"hostname": "app.mcp.test", "target_url": backend.url, "https": False},
        )
        assert not created.is_error, tool_text(created)
        assert created.structured_content["hostname"] == "app.mcp.test"

        # Traffic flows through the new proxy at once.
        async with httpx.AsyncClient() as http:
            with trio.fail_after(10):
                while True:
                    r = await http.get(
                        f"{proxyd.http_url}/echo/mcp-made", headers={"Host": "app.mcp.test"}
                    )
                    if r.status_code == 200:
                        break
                    await trio.sleep(0.05)
        listed = await client.call_tool("list_proxies", {})
        names = [p["hostname"] for p in listed.structured_content["proxies"]]
        assert "app.mcp.test" in names

        # The requests are found in the request logs.
        with trio.fail_after(10):
            while True:
                page = await client.call_tool(
                    "search_request_logs", {"hostname": "app.mcp.test", "limit": 10}
                )
                assert not page.is_error, tool_text(page)
                items = page.structured_content["items"]
                if any(i["path"] == "/echo/mcp-made" for i in items):
                    break
                await trio.sleep(0.2)
        assert items[0]["status"] == 200

        # Errors carry the same code and sentence as GraphQL.
        again = await client.call_tool(
            "create_proxy", {"hostname": "app.mcp.test", "target_url": backend.url}
        )
        assert again.is_error and tool_text(again).startswith("CONFLICT: ")
        bad = await client.call_tool(
            "create_proxy", {"hostname": "bad host", "target_url": backend.url}
        )
        assert bad.is_error and tool_text(bad).startswith("BAD_USER_INPUT: ")
        missing = await client.call_tool("delete_proxy", {"hostname": "nope.mcp.test"})
        assert missing.is_error and tool_text(missing).startswith("NOT_FOUND: ")

        deleted = await client.call_tool("delete_proxy", {"hostname": "app.mcp.test"})
        assert deleted.structured_content["ok"] is True


async def test_user_scope_can_list_but_not_change(proxyd, backend):
    url = f"{proxyd.api_url}/mcp"
    admin = mcp_token(proxyd, "admin", url)
    async with mcp_session(url, admin) as client:
        made = await client.call_tool(
            "create_proxy", {"hostname": "keep.mcp.test", "target_url": backend.url, "https": False}
        )
        assert not made.is_error, tool_text(made)
    user = mcp_token(proxyd, "user", url, subject="reader")
    async with mcp_session(url, user) as client:
        listed = await client.call_tool("list_proxies", {})
        assert not listed.is_error
        assert "keep.mcp.test" in [p["hostname"] for p in listed.structured_content["proxies"]]
        for name, args in (
            ("create_proxy", {"hostname": "new.mcp.test", "target_url": backend.url}),
            ("delete_proxy", {"hostname": "keep.mcp.test"}),
            ("update_proxy", {"hostname": "keep.mcp.test", "enabled": False}),
        ):
            result = await client.call_tool(name, args)
            assert result.is_error
            assert "FORBIDDEN" in tool_text(result) and "'admin'" in tool_text(result)
    async with mcp_session(url, admin) as client:
        shown = await client.call_tool("get_proxy", {"hostname": "keep.mcp.test"})
        assert shown.structured_content["proxy"]["enabled"] is True
        gone = await client.call_tool("get_proxy", {"hostname": "new.mcp.test"})
        assert gone.structured_content["proxy"] is None


async def test_tokens_for_other_audiences_are_refused(proxyd):
    url = f"{proxyd.api_url}/mcp"
    async with httpx.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"Accept": "application/json, text/event-stream"}
        # No token: 401 pointing at the resource metadata.
        r = await http.post(url, json=body, headers=headers)
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and "resource_metadata=" in challenge
        prm_url = challenge.split('resource_metadata="')[1].split('"')[0]
        assert prm_url == f"{proxyd.api_url}/.well-known/oauth-protected-resource/mcp"
        for path in (
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
        ):
            prm = (await http.get(proxyd.api_url + path)).json()
            assert prm["resource"] == url
            assert prm["authorization_servers"] and set(prm["scopes_supported"]) >= {
                "user",
                "admin",
            }

        refused = {
            "management API token": proxyd.token("admin"),
            "another resource": mcp_token(proxyd, "admin", "https://app.example.com/mcp"),
            "another port": mcp_token(proxyd, "admin", f"http://127.0.0.1:{free_port()}/mcp"),
            "not a JWT": "abc.def.ghi",
        }
        for what, token in refused.items():
            r = await http.post(
                url, json=body, headers={**headers, "Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 401, what
            assert 'error="invalid_token"' in r.headers["www-authenticate"], what
        # The same listener under another loopback name is the same endpoint.
        port = proxyd.api_port
        alias = mcp_token(proxyd, "user", f"http://localhost:{port}/mcp")
        r = await http.post(url, json=body, headers={**headers, "Authorization": f"Bearer {alias}"})
        assert r.status_code == 200, r.text
        # A token for this endpoint, but a Host that is not ours, does not match either: the
        # resource URL then is the issuer's.
        good = mcp_token(proxyd, "admin", url)
        r = await http.post(
            url,
            json=body,
            headers={**headers, "Authorization": f"Bearer {good}", "Host": "evil.example"},
        )
        assert r.status_code == 401


async def test_resources(proxyd, backend):
    url = f"{proxyd.api_url}/mcp"
    token = mcp_token(proxyd, "admin", url)
    async with mcp_session(url, token) as client:
        await client.call_tool(
            "create_proxy",
            {
                "hostname": "res.mcp.test",
                "target_url": backend.url,
                "https": False,
                "auth": "forward",
                "allowed_orgs": ["acme"],
            },
        )
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        assert "proxyd://schema.graphql" in listed and "proxyd://settings" in listed
        templates = (await client.list_resource_templates()).resource_templates
        assert "proxyd://proxies/{hostname}" in [t.uri_template for t in templates]
        schema = await client.read_resource("proxyd://schema.graphql")
        assert "type Query" in schema.contents[0].text
        settings = await client.read_resource("proxyd://settings")
        assert "`REDIS_URL`" in settings.contents[0].text
        proxy = await client.read_resource("proxyd://proxies/res.mcp.test")
        assert '"auth_required_groups": [\n    "acme"\n  ]' in proxy.contents[0].text


async def test_through_the_localhost_proxy_the_resource_is_that_url(proxyd):
    url = f"http://localhost:{proxyd.http_port}/mcp"
    async with httpx.AsyncClient() as http:
        prm = await http.get(
            f"{proxyd.http_url}/.well-known/oauth-protected-resource/mcp",
            headers={"Host": f"localhost:{proxyd.http_port}"},
        )
        assert prm.status_code == 200 and prm.json()["resource"] == url
    # A token for the API_PORT URL is not one for this URL, and the other way round.
    api_token = mcp_token(proxyd, "user", f"{proxyd.api_url}/mcp")
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{proxyd.http_url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "Host": f"localhost:{proxyd.http_port}",
                "Authorization": f"Bearer {api_token}",
                "Accept": "application/json, text/event-stream",
            },
        )
        assert r.status_code == 401
    async with mcp_session(url, mcp_token(proxyd, "user", url)) as client:
        health = await client.call_tool("health", {})
        assert health.structured_content["status"] == "ok"


async def test_hostile_authorization_headers(proxyd):
    url = f"{proxyd.api_url}/mcp"
    token = mcp_token(proxyd, "admin", url)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = ("Accept", "application/json, text/event-stream")
    cases = {
        "two Authorization headers": [("Authorization", f"Bearer {token}")] * 2,
        "Basic scheme": [("Authorization", f"Basic {token}")],
        "bearer without a token": [("Authorization", "Bearer")],
        "token only in the query": [],
    }
    async with httpx.AsyncClient() as http:
        for what, headers in cases.items():
            target = url + (f"?access_token={token}" if not headers else "")
            r = await http.post(target, json=body, headers=[accept, *headers])
            assert r.status_code in (400, 401), what
            assert "resource_metadata=" in r.headers["www-authenticate"], what
            assert token not in r.text, what


def test_mcp_config_snippets(proxyd):
    url = f"{proxyd.api_url}/mcp"
    vscode = proxyd.cli("mcp", "config", "--client", "vscode", "--url", url)
    assert vscode.returncode == 0, vscode.stderr
    assert json.loads(vscode.stdout) == {"servers": {"proxyd": {"type": "http", "url": url}}}
    claude = proxyd.cli("mcp", "config")
    server = json.loads(claude.stdout)["mcpServers"]["proxyd"]
    assert server["command"] == "npx" and server["args"][:2] == ["-y", "mcp-remote"]
    assert server["args"][-1] == "http://localhost/mcp"  # the issuer's /mcp (default issuer)
    remote = proxyd.cli("mcp", "config", "--client", "mcp-remote", "--url", url)
    assert remote.stdout.split() == ["npx", "-y", "mcp-remote", url]
    bad = proxyd.cli("mcp", "config", "--url", "ftp://example.com/mcp")
    assert bad.returncode == 2 and "must be an http(s) URL ending in /mcp" in bad.stderr


async def test_protocol_revisions(proxyd):
    url = f"{proxyd.api_url}/mcp"
    token = mcp_token(proxyd, "user", url)
    for mode, version in (("auto", "2026-07-28"), ("legacy", "2025-11-25")):
        async with mcp_session(url, token, mode=mode) as client:
            assert client.protocol_version == version
            health = await client.call_tool("health", {})
            assert health.structured_content["status"] == "ok"
    # 2025-06-18 by hand: initialize, then a request carrying MCP-Protocol-Version.
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
    }
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    async with httpx.AsyncClient() as http:
        r = await http.post(url, json=init, headers=headers)
        assert r.status_code == 200, r.text
        assert '"protocolVersion":"2025-06-18"' in r.text.replace(" ", "")
        headers["MCP-Protocol-Version"] = "2025-06-18"
        listed = await http.post(
            url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers
        )
        assert listed.status_code == 200 and '"list_proxies"' in listed.text


async def test_update_proxy_and_routes(proxyd, backend):
    url = f"{proxyd.api_url}/mcp"
    async with mcp_session(url, mcp_token(proxyd, "admin", url)) as client:
        made = await client.call_tool(
            "create_proxy",
            {"hostname": "grafana.mcp.test", "target_url": backend.url, "https": False},
        )
        assert made.structured_content["auth_enabled"] is False
        changed = await client.call_tool(
            "update_proxy",
            {"hostname": "grafana.mcp.test", "auth": "redirect", "allowed_orgs": ["acme"]},
        )
        assert not changed.is_error, tool_text(changed)
        proxy = changed.structured_content
        assert proxy["auth_enabled"] is True and proxy["auth_mode"] == "redirect"
        assert proxy["auth_required_groups"] == ["acme"]
        nothing = await client.call_tool("update_proxy", {"hostname": "grafana.mcp.test"})
        assert nothing.is_error and tool_text(nothing).startswith("BAD_USER_INPUT: ")

        route = await client.call_tool(
            "create_route",
            {
                "path_pattern": "/api",
                "target_type": "url",
                "target_value": backend.url,
                "priority": 90,
                "proxy_hostnames": ["grafana.mcp.test"],
            },
        )
        assert not route.is_error, tool_text(route)
        route_id = route.structured_content["route_id"]
        hit = await client.call_tool(
            "match_route", {"hostname": "grafana.mcp.test", "path": "/api/x"}
        )
        assert hit.structured_content["route"]["route_id"] == route_id
        miss = await client.call_tool(
            "match_route", {"hostname": "grafana.mcp.test", "path": "/apix"}
        )
        assert miss.structured_content["route"] is None
        listed = await client.call_tool("list_routes", {})
        assert route_id in [r["route_id"] for r in listed.structured_content["routes"]]
        assert not (await client.call_tool("delete_route", {"route_id": route_id})).is_error
        gone = await client.call_tool("delete_route", {"route_id": route_id})
        assert gone.is_error and tool_text(gone).startswith("NOT_FOUND: ")


async def test_redis_down_is_a_coded_error_not_a_hang(start_proxyd, tmp_path):
    own = RedisServer(tmp_path / "own-redis")
    try:
        proc = start_proxyd("fragile", redis=own.url)
        url = f"{proc.api_url}/mcp"
        async with mcp_session(url, mcp_token(proc, "admin", url)) as client:
            assert not (await client.call_tool("list_proxies", {})).is_error
            own.stop()
            with trio.fail_after(15):
                down = await client.call_tool("list_proxies", {})
            assert down.is_error, tool_text(down)
            assert tool_text(down).startswith("SERVICE_UNAVAILABLE: Redis is not answering")
            assert "redis://" not in tool_text(down)
            health = await client.call_tool("health", {})
            assert health.structured_content["redis"] == "unreachable"
    finally:
        own.stop()


async def test_custom_header_values_are_never_returned(proxyd, gql, backend):
    await gql(
        "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }",
        {
            "i": {
                "hostname": "secret.mcp.test",
                "targetUrl": backend.url,
                "enableHttps": False,
                "customHeaders": {"Authorization": "Bearer upstream-secret-value"},
            }
        },
    )
    url = f"{proxyd.api_url}/mcp"
    async with mcp_session(url, mcp_token(proxyd, "user", url)) as client:
        shown = await client.call_tool("get_proxy", {"hostname": "secret.mcp.test"})
        assert shown.structured_content["proxy"]["custom_header_names"] == ["Authorization"]
        listed = await client.call_tool("list_proxies", {})
        resource = await client.read_resource("proxyd://proxies/secret.mcp.test")
        for text in (tool_text(shown), tool_text(listed), resource.contents[0].text):
            assert "upstream-secret-value" not in text
