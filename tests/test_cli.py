"""The management CLI (`proxyd proxy|route|service ...`), run as a real subprocess against a real
`proxyd serve` and its GraphQL API."""

from __future__ import annotations

import json
import re
import subprocess
from functools import partial
from pathlib import Path

import httpx
import trio
from graphql import build_schema, parse, validate

from proxyd.cli import proxies, routes, services
from tests.support.backend import start_backend
from tests.support.processes import ProxydProcess, free_port

ROOT = Path(__file__).resolve().parents[1]


async def run(
    proxyd: ProxydProcess, *args: str, token: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`proxyd ARGS` in a worker thread (the test's trio loop keeps serving the backends)."""
    env = {"PROXYD_TOKEN": token or "", **(env or {})}
    result = await trio.to_thread.run_sync(partial(proxyd.cli, *args, env=env))
    if token:
        assert token not in result.stdout + result.stderr, "the CLI printed the token"
    return result


async def ok(proxyd: ProxydProcess, *args: str, token: str) -> str:
    result = await run(proxyd, *args, token=token)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


async def fails(
    proxyd: ProxydProcess,
    *args: str,
    token: str | None = None,
    env: dict | None = None,
    code: int = 1,
) -> str:
    """Run a command that must fail with `code`; return its stderr (one proxyd: line)."""
    result = await run(proxyd, *args, token=token, env=env)
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("proxyd: ") or code == 2, result.stderr
    return result.stderr


def table(stdout: str) -> list[list[str]]:
    """Rows of a table (header first), split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def fields(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


async def through_proxy(proxyd: ProxydProcess, hostname: str, want_port: int) -> dict:
    """GET /echo with Host: hostname until the expected backend answers (config is applied by
    events, so allow a moment)."""
    async with httpx.AsyncClient(timeout=10) as client:
        with trio.fail_after(10):
            while True:
                response = await client.get(f"{proxyd.http_url}/echo", headers={"Host": hostname})
                if response.status_code == 200 and response.json().get("backend") == want_port:
                    return response.json()
                await trio.sleep(0.05)


def test_cli_documents_match_the_schema() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    documents = [
        getattr(module, name)
        for module in (proxies, routes, services)
        for name in ("LIST", "SHOW", "CREATE", "UPDATE", "DELETE", "REGISTER")
        if hasattr(module, name)
    ]
    assert len(documents) == 12
    for document in documents:
        assert validate(schema, parse(document)) == [], document


async def test_proxy_lifecycle(proxyd: ProxydProcess, admin_token: str, backend, nursery) -> None:
    cli = partial(ok, proxyd, token=admin_token)
    host = "app.example.test"
    out = await cli("proxy", "create", host, backend.url, "--no-https", "--header", "X-One=1")
    assert out.strip() == f"created proxy {host} -> {backend.url}"

    rows = table(await cli("proxy", "list"))
    assert rows[0] == ["HOSTNAME", "TARGET", "ENABLED", "HTTP", "HTTPS", "AUTH"]
    assert [host, backend.url, "yes", "yes", "no", "-"] in rows
    listed = json.loads(await cli("proxy", "list", "--json"))
    (entry,) = [p for p in listed["proxies"] if p["hostname"] == host]
    assert entry["targetUrl"] == backend.url and entry["enableHttps"] is False

    echo = await through_proxy(proxyd, host, backend.port)
    assert ["x-one", "1"] in echo["headers"]

    other = await start_backend(nursery)
    try:
        out = await cli(
            "proxy",
            "update",
            host,
            "--target",
            other.url,
            "--https",
            "--no-preserve-host",
            "--header",
            "X-Two=2",
            "--response-header",
            "X-Served-By=proxyd",
        )
        assert out.startswith(f"updated proxy {host}: targetUrl")
        shown = fields(await cli("proxy", "show", host))
        assert shown["hostname"] == host
        assert shown["targetUrl"] == other.url
        assert shown["enableHttp"] == "yes" and shown["enableHttps"] == "yes"
        assert shown["preserveHostHeader"] == "no"
        assert shown["customHeaders"] == '{"X-Two":"2"}'
        assert shown["customResponseHeaders"] == '{"X-Served-By":"proxyd"}'
        assert shown["enabled"] == "yes"
        echo = await through_proxy(proxyd, host, other.port)
        assert ["x-two", "2"] in echo["headers"] and ["x-one", "1"] not in echo["headers"]

        await cli("proxy", "update", host, "--disable", "--no-http")
        detail = json.loads(await cli("proxy", "show", host, "--json"))["proxy"]
        assert detail["enabled"] is False and detail["enableHttp"] is False
        assert detail["targetUrl"] == other.url  # untouched by the second update
    finally:
        other.shutdown.set()

    assert (await cli("proxy", "delete", host)).strip() == f"deleted proxy {host}"
    assert host not in await cli("proxy", "list")
    assert all(
        p["hostname"] != host for p in json.loads(await cli("proxy", "list", "--json"))["proxies"]
    )
    err = await fails(proxyd, "proxy", "show", host, token=admin_token)
    assert err == f"proxyd: no proxy for {host} (NOT_FOUND).\n"


async def test_route_lifecycle(proxyd: ProxydProcess, admin_token: str) -> None:
    cli = partial(ok, proxyd, token=admin_token)
    await cli("proxy", "create", "api.example.test", "http://127.0.0.1:9")
    out = await cli(
        "route",
        "create",
        "/api",
        "port",
        "8081",
        "--id",
        "api-route",
        "--priority",
        "80",
        "--methods",
        "get,post",
        "--description",
        "the API",
    )
    assert out.strip() == "created route api-route: /api -> port:8081"
    out = await cli(
        "route",
        "create",
        r"^/v[0-9]+/",
        "url",
        "http://127.0.0.1:9/x",
        "--regex",
        "--proxy",
        "api.example.test",
        "--disabled",
    )
    regex_id = out.split()[2].rstrip(":")

    rows = table(await cli("route", "list"))
    assert rows[0] == ["ID", "PRIORITY", "PATH", "METHODS", "TARGET", "SCOPE", "ENABLED"]
    assert ["api-route", "80", "/api", "GET, POST", "port:8081", "global", "yes"] in rows
    assert [
        regex_id,
        "50",
        r"^/v[0-9]+/ (regex)",
        "any",
        "url:http://127.0.0.1:9/x",
        "proxy:api.example.test",
        "no",
    ] in rows
    assert rows.index(next(r for r in rows if r[0] == "api-route")) < rows.index(
        next(r for r in rows if r[0] == regex_id)
    ), "highest priority first"

    shown = fields(await cli("route", "show", "api-route"))
    assert shown["description"] == "the API" and shown["methods"] == "GET, POST"
    data = json.loads(await cli("route", "list", "--json"))
    assert {r["routeId"] for r in data["routes"]} >= {"api-route", regex_id}

    assert (await cli("route", "delete", "api-route")).strip() == "deleted route api-route"
    assert "api-route" not in await cli("route", "list")
    err = await fails(proxyd, "route", "delete", "api-route", token=admin_token)
    assert "no route with id api-route" in err and "NOT_FOUND" in err
    err = await fails(proxyd, "route", "create", "/x", "port", "99999", token=admin_token)
    assert "targetValue for a port target must be 1-65535" in err and "BAD_USER_INPUT" in err
    await fails(proxyd, "route", "create", "/x", "socket", "1", token=admin_token, code=2)


async def test_external_service_lifecycle(proxyd: ProxydProcess, admin_token: str) -> None:
    cli = partial(ok, proxyd, token=admin_token)
    assert (await cli("service", "external", "list")).strip() == "no external services"
    out = await cli(
        "service",
        "external",
        "register",
        "billing",
        "https://billing.internal:8443",
        "--description",
        "the billing API",
    )
    assert out.strip() == "registered external service billing -> https://billing.internal:8443"
    rows = table(await cli("service", "external", "list"))
    assert rows == [
        ["NAME", "URL", "ROUTING", "DESCRIPTION"],
        ["billing", "https://billing.internal:8443", "yes", "the billing API"],
    ]
    data = json.loads(await cli("service", "external", "list", "--json"))
    assert data["externalServices"][0]["serviceName"] == "billing"

    out = await cli("service", "external", "delete", "billing", "--json")
    assert json.loads(out) == {"deleteExternalService": True}
    assert (await cli("service", "external", "list")).strip() == "no external services"
    err = await fails(proxyd, "service", "external", "delete", "billing", token=admin_token)
    assert "no external service named billing" in err


async def test_errors(proxyd: ProxydProcess, admin_token: str, user_token: str) -> None:
    cli = partial(ok, proxyd, token=admin_token)
    await cli("proxy", "create", "dup.example.test", "http://127.0.0.1:9")

    err = await fails(
        proxyd, "proxy", "create", "dup.example.test", "http://127.0.0.1:9", token=admin_token
    )
    assert err == "proxyd: a proxy for dup.example.test already exists (CONFLICT).\n"

    err = await fails(proxyd, "proxy", "delete", "nope.example.test", "--yes", token=admin_token)
    assert err == "proxyd: no proxy for nope.example.test (NOT_FOUND).\n"

    err = await fails(proxyd, "proxy", "list")
    assert "proxyd token issue --scope admin" in err and "PROXYD_TOKEN=" in err

    err = await fails(proxyd, "proxy", "list", token="not-a-token")
    assert "UNAUTHENTICATED" in err

    err = await fails(
        proxyd, "proxy", "create", "user.example.test", "http://127.0.0.1:9", token=user_token
    )
    assert "FORBIDDEN" in err and "admin" in err
    assert "dup.example.test" in await ok(proxyd, "proxy", "list", token=user_token)

    url = f"http://127.0.0.1:{free_port()}"
    expected = f"proxyd: cannot reach the proxyd API at {url}: is `proxyd serve` running?\n"
    assert await fails(proxyd, "proxy", "list", "--api-url", url, token=admin_token) == expected
    assert (
        await fails(proxyd, "route", "list", token=admin_token, env={"PROXYD_API_URL": url})
        == expected
    )

    err = await fails(
        proxyd, "proxy", "create", "bad.example.test", "ftp://nowhere", token=admin_token
    )
    assert "targetUrl must be an http:// or https:// URL with a host" in err
    assert "BAD_USER_INPUT" in err

    err = await fails(
        proxyd,
        "proxy",
        "create",
        "h.example.test",
        "http://127.0.0.1:9",
        "--header",
        "no-equals-sign",
        token=admin_token,
        code=2,
    )
    assert "expected NAME=VALUE" in err
    err = await fails(proxyd, "proxy", "update", "dup.example.test", token=admin_token, code=2)
    assert "nothing to update" in err
    await fails(
        proxyd,
        "proxy",
        "update",
        "dup.example.test",
        "--enable",
        "--disable",
        token=admin_token,
        code=2,
    )
