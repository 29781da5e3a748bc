"""Redirect URI rules (issue 10, findings 2-4): one validation for dynamic registration, /authorize,
Client ID Metadata Documents and the built-in per-proxy client. Hostile URIs get a 400 page and
never a redirect or a consent page; the legitimate forms keep working."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.support.fake_github import FakeGitHub
from tests.support.graphql import GraphQLClient
from tests.support.oauth import (
    REDIRECT,
    Browser,
    authorize_url,
    consent_form,
    metadata_documents,
    pkce,
    register,
    start_oauth_proxyd,
)

CREATE = "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }"

# Each of these was accepted by the rsplit(":")-based loopback check or as an exact match, and
# sent the code somewhere other than the registered loopback callback.
HOSTILE_AT_AUTHORIZE = [
    "http://127.0.0.1:8976@evil.example/callback",
    "http://127.0.0.1:@evil.example/callback",
    "http://127.0.0.1:8976\\@evil.example/callback",
    "http://127.0.0.1:8976%2F@evil.example/callback",
    "http://127.0.0.1:8976/callback#frag",
    "http://127.0.0.1:8976/callback%23frag",
    "http://127.0.0.1:8976/%2e%2e/callback",
]
HOSTILE_AT_REGISTRATION = [
    "https://app.example@evil.example/cb",
    "https://app.example:443@evil.example/cb",
    "https://app.example\\@evil.example/cb",
    "https://app.example/cb%2F..%2F..",
    "https://app.example/cb#x",
    "https://app.example/c b",
    "http://localhost.evil.example/cb",
    "http://127.0.0.1.nip.io/cb",
    "javascript:alert(1)",
    "data:text/html,hi",
    "http://evil.example/cb",
]


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def server(start_proxyd, github):
    return start_oauth_proxyd(start_proxyd, github)


def first_page(url: str, browser: Browser | None = None) -> httpx.Response:
    return (browser or Browser()).client.get(url)


def test_hostile_redirect_uris_at_authorize_get_a_page_not_a_redirect(server):
    issuer = server.api_url
    client = register(issuer)
    _, challenge = pkce()
    for uri in HOSTILE_AT_AUTHORIZE:
        page = first_page(authorize_url(issuer, client["client_id"], challenge, redirect_uri=uri))
        assert page.status_code == 400, (uri, page.status_code)
        assert "location" not in page.headers and consent_form(page.text) is None, uri
        assert "redirect_uri" in page.text
    # the legitimate forms: the registered URI, and the same loopback callback on another port
    for uri in (REDIRECT, "http://127.0.0.1:5555/callback"):
        page = first_page(authorize_url(issuer, client["client_id"], challenge, redirect_uri=uri))
        assert page.status_code == 200 and consent_form(page.text), uri
    # loopback means the same host: localhost is not 127.0.0.1, and the path is fixed
    for uri in ("http://localhost:8976/callback", "http://127.0.0.1:8976/callback/x"):
        page = first_page(authorize_url(issuer, client["client_id"], challenge, redirect_uri=uri))
        assert page.status_code == 400, uri


def test_registration_refuses_hostile_redirect_uris(server):
    issuer = server.api_url
    for uri in HOSTILE_AT_REGISTRATION + HOSTILE_AT_AUTHORIZE:
        response = httpx.post(f"{issuer}/register", json={"redirect_uris": [uri]})
        assert response.status_code == 400, (uri, response.text)
        assert response.json()["error"] == "invalid_redirect_uri"
    # accepted: https, exact loopback hosts over http, private-use schemes
    good = [
        "https://app.example/cb?x=1",
        "https://app.example:8443/cb",
        "http://127.0.0.1/callback",
        "http://[::1]:9000/callback",
        "http://localhost:33418/oauth/callback",
        "com.example.app:/oauth2redirect",
    ]
    client = register(issuer, redirect_uris=good)
    assert client["redirect_uris"] == good
    _, challenge = pkce()
    page = first_page(
        authorize_url(
            issuer, client["client_id"], challenge, redirect_uri="https://app.example/cb?x=1"
        )
    )
    assert page.status_code == 200 and "app.example" in page.text


def test_metadata_documents_pass_the_same_rules_and_set_only_their_fields(start_proxyd, github):
    with metadata_documents() as (base, documents):
        proc = start_oauth_proxyd(start_proxyd, github, OAUTH_CIMD_ALLOW_PRIVATE="true")
        issuer = proc.api_url
        _, challenge = pkce()
        for name, uri in (
            ("js", "javascript:alert(document.domain)"),
            ("plain", "http://evil.example/cb"),
            ("userinfo", "http://127.0.0.1:8976@evil.example/callback"),
        ):
            url = f"{base}/{name}.json"
            documents[f"/{name}.json"] = {"client_id": url, "redirect_uris": [uri]}
            page = first_page(authorize_url(issuer, url, challenge, redirect_uri=uri))
            assert page.status_code == 400 and consent_form(page.text) is None, name
            assert "location" not in page.headers
        # a document may not make itself a proxy's built-in client
        url = f"{base}/sneaky.json"
        documents["/sneaky.json"] = {
            "client_id": url,
            "redirect_uris": [REDIRECT],
            "proxy_callback_host": "web.test",
        }
        target = f"http://web.test:{proc.http_port}/.proxyd/callback"
        page = first_page(authorize_url(issuer, url, challenge, redirect_uri=target))
        assert page.status_code == 400 and consent_form(page.text) is None
        # the same document's own redirect URI works
        page = first_page(authorize_url(issuer, url, challenge))
        assert page.status_code == 200 and consent_form(page.text)


async def test_builtin_proxy_client_only_its_callback_and_its_proxy(start_proxyd, github, backend):
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer, port = proc.api_url, proc.http_port
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    common = {"targetUrl": backend.url, "enableHttps": False, "authEnabled": True}
    await gql(CREATE, {"i": {"hostname": "web.test", "authMode": "redirect", **common}})
    client_id = "proxyd-proxy:web.test"
    callback = f"http://web.test:{port}/.proxyd/callback"
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        with trio.fail_after(10):
            while (await http.get("/", headers={"Host": "web.test"})).status_code in (404, 421):
                await trio.sleep(0.1)
        # the proxy starts a sign-in: its /authorize URL names the exact callback and a state
        start = await http.get("/page", headers={"Host": f"web.test:{port}", "Accept": "text/html"})
    assert start.status_code == 302
    legit = httpx.URL(start.headers["location"])
    assert legit.params["redirect_uri"] == callback
    _, challenge = pkce()

    def attempt(**changes: str) -> httpx.Response:
        params = dict(legit.params)
        params.update(changes)
        return first_page(f"{issuer}/authorize?" + str(httpx.QueryParams(params)))

    # another port, the other scheme, userinfo, or a different path: a page, never a redirect
    for uri in (
        f"http://web.test:{port + 1}/.proxyd/callback",
        "http://web.test:9/.proxyd/callback",
        f"https://web.test:{port}/.proxyd/callback",
        f"http://x@web.test:{port}/.proxyd/callback",
        f"http://web.test:{port}/.proxyd/callback/../x",
    ):
        page = await trio.to_thread.run_sync(lambda u=uri: attempt(redirect_uri=u))
        assert page.status_code == 400 and "location" not in page.headers, uri
    # an attacker's own request (own state, own PKCE challenge) is refused for the right URI too
    forged = authorize_url(issuer, client_id, challenge, redirect_uri=callback)
    page = await trio.to_thread.run_sync(lambda: first_page(forged))
    assert page.status_code == 400 and consent_form(page.text) is None
    # its resource is only its proxy: the management API is refused
    page = await trio.to_thread.run_sync(lambda: attempt(resource=issuer))
    assert page.status_code == 302
    assert httpx.URL(page.headers["location"]).params["error"] == "invalid_target"
    # its codes are never redeemed at /token (only by the proxy itself)
    answer = await trio.to_thread.run_sync(
        lambda: httpx.post(
            f"{issuer}/token",
            data={"grant_type": "authorization_code", "client_id": client_id, "code": "x"},
        )
    )
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"
    # the legitimate sign-in still works end to end
    browser = Browser({"web.test": port})
    result = await trio.to_thread.run_sync(
        lambda: browser.run(f"http://web.test:{port}/page?x=1", stop_prefix="never:")
    )
    assert result["_status"] == "200", result
    assert json.loads(result["_body"])["path"] == "/page"


def test_the_rules_themselves():
    from proxyd.oauth.redirects import matches, problem

    for uri in (
        HOSTILE_AT_AUTHORIZE
        + HOSTILE_AT_REGISTRATION
        + [
            "http://[::1]@evil.example/cb",
            "http://localhost:8976%40evil.example/cb",
            "http://127.0.0.1:99999/cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:8976/cb%",
            "http://127.0.0.1:8976/cb\t",
            "HTTP://127.0.0.1/cb",
            "https:/app.example/cb",
            "https:///cb",
            "https://app.example/caf\u00e9",
            "vscode://callback",
        ]
    ):
        assert problem(uri) is not None, uri
    registered = ["http://127.0.0.1:8976/callback", "https://app.example/cb"]
    assert matches(registered, "https://app.example/cb")
    assert not matches(registered, "https://app.example/cb/")
    assert not matches(registered, "https://app.example/cb?x=1")
    assert not matches(registered, "https://APP.example/cb")
    assert matches(registered, "http://127.0.0.1/callback")  # the port is free, even absent
    assert matches(registered, "http://127.0.0.1:1234/callback")
    assert not matches(registered, "http://127.0.0.1:1234/callback?x=1")
    assert not matches(registered, "http://[::1]:1234/callback")
    assert not matches(["https://app.example:8443/cb"], "https://app.example:9443/cb")
    # a URI registered before these rules existed no longer matches even exactly
    assert not matches(["https://a.example@b.example/cb"], "https://a.example@b.example/cb")
