"""Request records carry who made the request: a real OAuth-protected request through the edge is
logged with the user, the client id and the auth outcome, and the user and client filters of
requestLogs find it (issue 9, C.2)."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.support.fake_github import FakeGitHub
from tests.support.graphql import GraphQLClient
from tests.support.logs import wait_for_logs
from tests.support.oauth import (
    Browser,
    authorize_url,
    exchange,
    pkce,
    register,
    start_oauth_proxyd,
)

CREATE = "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }"


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


async def test_records_carry_user_client_and_auth_outcome(start_proxyd, github, backend):
    proc = start_oauth_proxyd(
        start_proxyd, github, OAUTH_ALLOWED_GITHUB_USERS="alice", OAUTH_USER_USERS="alice"
    )
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    port = proc.http_port
    host = f"who.test:{port}"
    await gql(
        CREATE,
        {
            "i": {
                "hostname": "who.test",
                "targetUrl": backend.url,
                "enableHttps": False,
                "authEnabled": True,
                "authAllowedScopes": ["mcp"],
            }
        },
    )
    issuer = proc.api_url
    client = register(issuer)
    verifier, challenge = pkce()
    result = Browser().run(
        authorize_url(
            issuer, client["client_id"], challenge, resource=f"http://{host}", scope="mcp"
        )
    )
    tokens = exchange(issuer, client["client_id"], result["code"], verifier).json()
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        with trio.fail_after(10):
            while (await http.get("/", headers={"Host": host})).status_code == 404:
                await trio.sleep(0.1)
        ok = await http.get(
            "/mine", headers={"Host": host, "Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert ok.status_code == 200, ok.text
        assert (await http.get("/anonymous", headers={"Host": host})).status_code == 401

    mine = await wait_for_logs(gql, 1, {"user": "alice"})
    assert [r["path"] for r in mine] == ["/mine"]
    assert mine[0]["clientId"] == client["client_id"]
    assert mine[0]["authOutcome"] == "authenticated"
    by_client = await wait_for_logs(gql, 1, {"clientId": client["client_id"]})
    assert [r["path"] for r in by_client] == ["/mine"]
    anonymous = await wait_for_logs(gql, 1, {"path": "/anonymous"})
    assert anonymous[0]["status"] == 401
    assert anonymous[0]["authOutcome"] == "unauthorized" and anonymous[0]["user"] == ""
