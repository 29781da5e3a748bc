"""The management API: bearer-token authorization by scope, coded errors, and the events
subscription over graphql-transport-ws."""

from __future__ import annotations

import json

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.graphql import CREATE_PROXY, GraphQLClient


async def test_no_token_is_unauthenticated(proxyd):
    response = await GraphQLClient(proxyd.api_url, None).raw("{ proxies { hostname } }")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_forged_or_foreign_tokens_are_rejected(proxyd, admin_token):
    head, payload, _sig = admin_token.split(".")
    forged = f"{head}.{payload}.{'A' * 342}"
    for token in (forged, "not-a-jwt", admin_token[:-4] + "abcd"):
        response = await GraphQLClient(proxyd.api_url, token).raw("{ proxies { hostname } }")
        assert response.status_code == 401, token
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_user_token_can_read_but_not_mutate(proxyd, user_token):
    gql = GraphQLClient(proxyd.api_url, user_token)
    data = await gql("{ proxies { hostname } }")
    assert [p["hostname"] for p in data["proxies"]] == ["localhost"]
    errors = await gql.errors(
        CREATE_PROXY, {"input": {"hostname": "x.test", "targetUrl": "http://127.0.0.1:1"}}
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await gql('{ proxy(hostname: "x.test") { hostname } }'))["proxy"] is None


async def test_expired_token_is_rejected(proxyd):
    result = proxyd.cli("token", "issue", "--scope", "admin", "--ttl", "1")
    token = result.stdout.strip()
    await trio.sleep(2.1)
    response = await GraphQLClient(proxyd.api_url, token).raw("{ proxies { hostname } }")
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


async def test_token_issue_rejects_bad_input(proxyd):
    bad_scope = proxyd.cli("token", "issue", "--scope", "root")
    assert bad_scope.returncode == 1 and "unknown scope 'root'" in bad_scope.stderr
    bad_ttl = proxyd.cli("token", "issue", "--scope", "admin", "--ttl", "soon")
    assert bad_ttl.returncode == 2 and "TTL" in bad_ttl.stderr


async def test_bad_requests_get_clear_errors(proxyd, admin_token):
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient() as client:
        not_json = await client.post(f"{proxyd.api_url}/graphql", content="{", headers=headers)
        syntax = await client.post(
            f"{proxyd.api_url}/graphql", json={"query": "{ proxies "}, headers=headers
        )
    assert not_json.status_code == 400 and "must be JSON" in not_json.text
    assert syntax.status_code == 400 and "Syntax Error" in syntax.text


async def test_many_async_fields_resolve_together(gql):
    # Sibling async fields are gathered in a trio nursery (graphql-core would use asyncio).
    fields = " ".join(f"p{i}: proxies {{ hostname routes {{ routeId }} }}" for i in range(20))
    data = await gql(f"{{ {fields} health {{ status redis }} }}")
    assert all(data[f"p{i}"][0]["hostname"] == "localhost" for i in range(20))
    assert data["health"] == {"status": "ok", "redis": "ok"}


async def test_events_subscription_sees_proxy_created(proxyd, gql, admin_token):
    url = f"ws://127.0.0.1:{proxyd.api_port}/graphql"
    async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send_message(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {admin_token}"}}
            )
        )
        assert json.loads(await ws.get_message())["type"] == "connection_ack"
        await ws.send_message(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription { events { eventType hostname data timestamp } }"
                    },
                }
            )
        )
        await trio.sleep(0.2)  # the subscription is registered before the change happens
        await gql(
            CREATE_PROXY, {"input": {"hostname": "sub.test", "targetUrl": "http://127.0.0.1:1"}}
        )
        with trio.fail_after(5):
            message = json.loads(await ws.get_message())
        assert message["type"] == "next" and message["id"] == "1"
        event = message["payload"]["data"]["events"]
        assert event["eventType"] == "proxy_created" and event["hostname"] == "sub.test"
        assert event["data"]["enable_http"] is True


async def test_subscription_without_token_is_closed_4403(proxyd):
    url = f"ws://127.0.0.1:{proxyd.api_port}/graphql"
    async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send_message(json.dumps({"type": "connection_init", "payload": {}}))
        with trio.fail_after(5):
            while not ws.closed:
                try:
                    await ws.get_message()
                except ConnectionClosed:
                    break
    assert ws.closed.code == 4403


async def test_token_issue_for_a_protected_resource(proxyd, gql, backend):
    """`proxyd token issue --audience URL` mints a service token for one protected proxy: it
    opens that proxy and nothing else (not the management API, not another proxy)."""
    for host in ("svc.test", "other-svc.test"):
        await gql(
            CREATE_PROXY,
            {
                "input": {
                    "hostname": host,
                    "targetUrl": backend.url,
                    "authEnabled": True,
                    "enableHttps": False,
                }
            },
        )
    result = proxyd.cli(
        "token", "issue", "--scope", "user", "--subject", "robot", "--audience", "http://svc.test"
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as client:
        with trio.fail_after(5):
            while True:
                ok = await client.get(
                    proxyd.http_url + "/", headers={"Host": "svc.test", **headers}
                )
                if ok.status_code != 404:
                    break
                await trio.sleep(0.02)
        other = await client.get(
            proxyd.http_url + "/", headers={"Host": "other-svc.test", **headers}
        )
        anonymous = await client.get(proxyd.http_url + "/", headers={"Host": "svc.test"})
    assert ok.status_code == 200
    seen = dict(ok.json()["headers"])
    assert seen["x-auth-user"] == "robot" and "authorization" not in seen
    assert other.status_code == 401 and anonymous.status_code == 401
    management = await GraphQLClient(proxyd.api_url, token).raw("{ proxies { hostname } }")
    assert management.status_code == 401
    bad = proxyd.cli("token", "issue", "--scope", "user", "--audience", "not a url")
    assert bad.returncode == 1 and "must be a resource URL" in bad.stderr
