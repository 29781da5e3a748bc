"""Token checks at the proxy and the API (issue 10, findings 6, 7 and 12): nbf and iat with a clock
skew; unknown kids cost no Redis reload; /jwks with a configured key; proxyd's cookies and the
user's token kept from the backend in redirect mode; OAuth metadata without a token on a
protected proxy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time

import coredis
import httpx
import pytest
import trio
from joserfc import jwt
from joserfc.jwk import RSAKey

from proxyd.oauth.tokens import MANAGEMENT_AUDIENCE, mint
from tests.support.fake_github import FakeGitHub
from tests.support.graphql import GraphQLClient
from tests.support.oauth import Browser, start_oauth_proxyd
from tests.support.processes import redis_command

CREATE = "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }"
QUERY = {"query": "{ proxies { hostname } }"}


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def issuer_env(proc_port_hint: str = "http://proxyd.test") -> dict[str, str]:
    return {"OAUTH_ISSUER": proc_port_hint}


async def mint_with(redis_url: str, issuer: str, **claims) -> str:
    """A token signed with the key proxyd signs with, plus extra claims (nbf, iat...)."""
    client = coredis.Redis.from_url(redis_url, decode_responses=True)
    async with client:
        audience = claims.pop("audience", MANAGEMENT_AUDIENCE)
        return await mint(
            client,
            issuer=issuer,
            subject="tester",
            scopes=["admin"],
            audience=audience,
            extra=claims,
        )


def api(proc, token: str) -> httpx.Response:
    return httpx.post(
        proc.api_url + "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
    )


async def proxied(proc, host: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(
            proc.http_url + "/x", headers={"Host": host, "Authorization": f"Bearer {token}"}
        )


async def create_proxies(proc, backend, *inputs: dict) -> None:
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    for extra in inputs:
        data = {"targetUrl": backend.url, "enableHttps": False, "authEnabled": True, **extra}
        await gql(CREATE, {"i": data})
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        for extra in inputs:
            with trio.fail_after(10):
                while (await http.get("/", headers={"Host": extra["hostname"]})).status_code in (
                    404,
                    421,
                ):
                    await trio.sleep(0.05)


# -- finding 6: nbf / iat ---------------------------------------------------------------------------


async def test_tokens_not_yet_valid_are_refused_within_the_skew_they_pass(
    start_proxyd, redis_url, backend
):
    issuer = "http://proxyd.test"
    proc = start_proxyd(OAUTH_ISSUER=issuer, OAUTH_CLOCK_SKEW="30")
    now = int(time.time())
    audience = f"http://app.test:{proc.http_port}"
    await create_proxies(proc, backend, {"hostname": "app.test"})
    for claims in ({"nbf": now + 600}, {"iat": now + 600}, {"nbf": "soon"}):
        token = await mint_with(redis_url, issuer, **claims)
        answer = api(proc, token)
        assert answer.status_code == 401, (claims, answer.text)
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        at_proxy = await mint_with(redis_url, issuer, audience=audience, **claims)
        r = await proxied(proc, "app.test", at_proxy)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    # A clock a few seconds ahead (inside OAUTH_CLOCK_SKEW) is fine, at the API and the proxy.
    token = await mint_with(redis_url, issuer, nbf=now + 10, iat=now + 10)
    assert api(proc, token).status_code == 200
    at_proxy = await mint_with(redis_url, issuer, audience=audience, nbf=now + 10, iat=now + 10)
    r = await proxied(proc, "app.test", at_proxy)
    assert r.status_code == 200, r.text


# -- finding 6: unknown kid -------------------------------------------------------------------------


def hgetall_calls(port: int) -> int:
    """How many HGETALL commands this Redis has run (the key set is read with HGETALL)."""
    stats = redis_command(port, "INFO", "commandstats").decode()
    found = re.search(r"cmdstat_hgetall:calls=(\d+)", stats)
    return int(found.group(1)) if found else 0


async def test_unknown_kids_do_not_reload_keys_and_new_keys_still_arrive(
    start_proxyd, redis_server, redis_url, backend
):
    issuer = "http://proxyd.test"
    proc = start_proxyd(OAUTH_ISSUER=issuer, OAUTH_KEY_REFRESH_INTERVAL="2")
    await create_proxies(proc, backend, {"hostname": "app.test"})
    audience = f"http://app.test:{proc.http_port}"
    api(proc, proc.token("admin"))  # both verifiers have loaded their keys once
    await proxied(proc, "app.test", proc.token("mcp"))
    await trio.sleep(2.1)  # one refresh each is now allowed: there must be at most that

    attacker = RSAKey.generate_key(2048, private=True)
    now = int(time.time())
    before = hgetall_calls(redis_server.port)

    def forged(kid: str, aud: str) -> str:
        claims = {
            "iss": issuer,
            "sub": "eve",
            "aud": aud,
            "scope": "admin mcp",
            "iat": now,
            "exp": now + 600,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode({"alg": "RS256", "kid": kid}, claims, attacker)

    async with httpx.AsyncClient(timeout=10) as http:
        for n in range(40):
            kid = f"unknown-{n}"
            r = await http.post(
                proc.api_url + "/graphql",
                json=QUERY,
                headers={"Authorization": f"Bearer {forged(kid, MANAGEMENT_AUDIENCE)}"},
            )
            assert r.status_code == 401
            r = await http.get(
                proc.http_url + "/x",
                headers={"Host": "app.test", "Authorization": f"Bearer {forged(kid, audience)}"},
            )
            assert r.status_code == 401
    reloads = hgetall_calls(redis_server.port) - before
    assert reloads <= 2, f"{reloads} key reloads for 80 tokens with unknown kids"

    # A key added to Redis by another process is picked up (at the bounded rate).
    pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
    client = coredis.Redis.from_url(redis_url, decode_responses=True)
    async with client:
        new = await mint(
            client,
            issuer=issuer,
            subject="tester",
            scopes=["admin"],
            private_key_b64=base64.b64encode(pem).decode(),
        )
    with trio.fail_after(6):
        while api(proc, new).status_code != 200:
            await trio.sleep(0.3)


# -- finding 6: /jwks with a configured key ----------------------------------------------------------


def _key_b64() -> tuple[str, RSAKey]:
    key = RSAKey.generate_key(2048, private=True)
    return base64.b64encode(key.as_pem(private=True)).decode(), key


def test_jwks_publishes_the_configured_key_and_only_retained_old_ones(start_proxyd, redis_url):
    issuer = "http://proxyd.test"
    first = start_proxyd("first", OAUTH_ISSUER=issuer)  # generates a key of its own
    old_token = first.token("admin")
    old_kids = {k["kid"] for k in httpx.get(first.api_url + "/jwks").json()["keys"]}
    first.stop()
    b64, _ = _key_b64()
    second = start_proxyd("second", OAUTH_ISSUER=issuer, OAUTH_JWT_PRIVATE_KEY_B64=b64)
    kids = [k["kid"] for k in httpx.get(second.api_url + "/jwks").json()["keys"]]
    assert len(kids) == 1 and kids[0] not in old_kids, kids
    assert api(second, second.token("admin")).status_code == 200
    assert api(second, old_token).status_code == 401  # not retained: no longer accepted
    second.stop()

    third = start_proxyd(
        "third",
        OAUTH_ISSUER=issuer,
        OAUTH_JWT_PRIVATE_KEY_B64=b64,
        OAUTH_JWT_RETAINED_KIDS=",".join(old_kids),
    )
    published = httpx.get(third.api_url + "/jwks").json()["keys"]
    assert {k["kid"] for k in published} == {kids[0], *old_kids}
    assert all("d" not in k and "p" not in k for k in published)
    assert api(third, old_token).status_code == 200
    assert api(third, third.token("admin")).status_code == 200


def test_fresh_start_with_a_configured_key_generates_no_other_key(start_proxyd, redis_server):
    b64, key = _key_b64()
    proc = start_proxyd(OAUTH_ISSUER="http://proxyd.test", OAUTH_JWT_PRIVATE_KEY_B64=b64)
    published = httpx.get(proc.api_url + "/jwks").json()["keys"]
    expected = f"proxyd-{key.thumbprint()[:16]}"  # the kid of the configured key
    assert [k["kid"] for k in published] == [expected]
    assert published[0]["n"] == key.as_dict(private=False)["n"]
    stored = redis_command(redis_server.port, "HKEYS", "oauth:signing_keys")
    assert expected.encode() in stored and stored.startswith(b"*1\r\n"), stored


# -- finding 7: redirect mode, proxyd's cookies and the token ----------------------------------------


def upstream_headers(response: httpx.Response) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    return seen


async def test_redirect_mode_keeps_proxyd_cookies_and_token_from_the_backend(
    start_proxyd, github, backend
):
    proc = start_oauth_proxyd(start_proxyd, github)
    port = proc.http_port
    await create_proxies(
        proc,
        backend,
        {"hostname": "web.test", "authMode": "redirect", "authExcludedPaths": ["/public/"]},
        {"hostname": "own.test", "authMode": "redirect", "resourceOverrideBackend": True},
    )
    tokens: dict[str, str] = {}
    for host in ("web.test", "own.test"):
        browser = Browser({host: port})
        result = await trio.to_thread.run_sync(
            lambda b=browser, h=host: b.run(f"http://{h}:{port}/page", stop_prefix="never:")
        )
        assert result["_status"] == "200", result
        token = tokens[host] = browser.client.cookies.get("unified_auth_token")
        assert token
        # The browser also carries the authorization server's cookies and one of the site's own.
        cookie = f"theme=dark; unified_auth_token={token}; proxyd_session=abc; __Host-proxyd_csrf=x"
        for path in ("/page", "/public/a"):
            async with httpx.AsyncClient(timeout=10) as http:
                r = await http.get(
                    f"{proc.http_url}{path}", headers={"Host": host, "Cookie": cookie}
                )
            if host == "own.test" and path == "/public/a":
                continue
            assert r.status_code == 200, r.text
            seen = upstream_headers(r)
            assert seen["cookie"] == ["theme=dark"], seen.get("cookie")
            assert token not in json.dumps(r.json()["headers"]).replace(f"Bearer {token}", "")
            if host == "web.test":
                assert "authorization" not in seen
            elif path == "/page":  # configured to send the token: as Authorization only
                assert seen["authorization"] == [f"Bearer {token}"]
        # A request with only proxyd's cookie sends no Cookie header at all.
        async with httpx.AsyncClient(timeout=10) as http:
            only_ours = {"Host": host, "Cookie": f"unified_auth_token={token}"}
            r = await http.get(f"{proc.http_url}/page", headers=only_ours)
        assert r.status_code == 200 and "cookie" not in upstream_headers(r)
    # A token sent as Authorization is used by proxyd and not passed on; on an excluded path
    # proxyd does not use the header, so the client's own credential reaches the backend.
    async with httpx.AsyncClient(timeout=10) as http:
        web = tokens["web.test"]
        bearer = {"Host": "web.test", "Authorization": f"Bearer {web}", "Cookie": "theme=dark"}
        r = await http.get(f"{proc.http_url}/page", headers=bearer)
        assert r.status_code == 200 and "authorization" not in upstream_headers(r)
        cookie = f"theme=dark; unified_auth_token={web}"
        own_key = {"Host": "web.test", "Authorization": "Bearer backend-key", "Cookie": cookie}
        r = await http.get(f"{proc.http_url}/public/a", headers=own_key)
        seen = upstream_headers(r)
        assert seen["authorization"] == ["Bearer backend-key"] and seen["cookie"] == ["theme=dark"]


# -- finding 12: discovery from the resource's origin -------------------------------------------------


async def test_oauth_metadata_answers_without_a_token_on_a_protected_proxy(
    start_proxyd, github, backend
):
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer = proc.env["OAUTH_ISSUER"]
    await create_proxies(
        proc,
        backend,
        {"hostname": "mcp.test", "resourceEndpoint": "/mcp"},
        {"hostname": "red.test", "authMode": "redirect"},
    )
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        for host in ("mcp.test", "red.test"):
            headers = {"Host": host, "Accept": "application/json"}
            r = await http.get("/.well-known/oauth-authorization-server", headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["issuer"] == issuer
            assert r.json()["token_endpoint"] == issuer + "/token"
            r = await http.get("/.well-known/oauth-authorization-server/mcp", headers=headers)
            assert r.status_code != 401 and "www-authenticate" not in r.headers
            r = await http.get("/.well-known/oauth-protected-resource/mcp", headers=headers)
            assert r.status_code == 200 and r.json()["authorization_servers"] == [issuer]
            # Everything else still needs a token.
            assert (await http.get("/mcp", headers=headers)).status_code == 401
            r = await http.get("/.well-known/oauth-authorization-serverx", headers=headers)
            assert r.status_code == 401


# -- attack: algorithm confusion and oversized tokens -----------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resigned(token: str, alg: str, secret: bytes) -> str:
    """The token's claims under a header naming `alg` (kid kept): unsigned for `none`, else
    HMAC-SHA256 keyed with `secret` (the classic RS256 -> HS256 public-key confusion)."""
    head, payload, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    signing_input = f"{_b64(json.dumps({**header, 'alg': alg}).encode())}.{payload}"
    if alg == "none":
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


async def test_tokens_with_another_algorithm_or_oversized_are_refused(
    start_proxyd, redis_url, backend
):
    issuer = "http://proxyd.test"
    proc = start_proxyd(OAUTH_ISSUER=issuer)
    await create_proxies(proc, backend, {"hostname": "app.test"})
    audience = f"http://app.test:{proc.http_port}"
    genuine = await mint_with(redis_url, issuer)
    at_proxy = await mint_with(redis_url, issuer, audience=audience)
    assert api(proc, genuine).status_code == 200
    assert (await proxied(proc, "app.test", at_proxy)).status_code == 200
    async with httpx.AsyncClient(timeout=10) as http:
        jwks = (await http.get(proc.api_url + "/jwks")).json()
    public = RSAKey.import_key(jwks["keys"][0])
    secret = public.as_pem(private=False)
    forged = [
        (_resigned(genuine, a, secret), _resigned(at_proxy, a, secret)) for a in ("none", "HS256")
    ]
    # A genuinely signed token carrying 9 KB of claims: refused for its size, before any parsing.
    pad = "x" * 9000
    forged.append(
        (
            await mint_with(redis_url, issuer, pad=pad),
            await mint_with(redis_url, issuer, audience=audience, pad=pad),
        )
    )
    for for_api, for_proxy in forged:
        answer = api(proc, for_api)
        assert answer.status_code == 401, answer.text
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        r = await proxied(proc, "app.test", for_proxy)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_two_authorization_headers_are_refused_at_a_protected_proxy(
    start_proxyd, redis_url, backend
):
    """Which of two tokens counts is ambiguous (proxyd would check one, a backend that gets the
    header might read the other): the request is refused, whatever the tokens."""
    issuer = "http://proxyd.test"
    proc = start_proxyd(OAUTH_ISSUER=issuer)
    await create_proxies(
        proc,
        backend,
        {"hostname": "app.test"},
        {"hostname": "own.test", "resourceOverrideBackend": True},
    )
    async with httpx.AsyncClient(timeout=10) as http:
        for host in ("app.test", "own.test"):
            good = await mint_with(redis_url, issuer, audience=f"http://{host}:{proc.http_port}")
            one = [("Host", host), ("Authorization", f"Bearer {good}")]
            assert (await http.get(proc.http_url + "/x", headers=one)).status_code == 200
            two = [*one, ("Authorization", "Bearer something-else")]
            r = await http.get(proc.http_url + "/x", headers=two)
            assert r.status_code == 400, (host, r.text)
            assert 'error="invalid_request"' in r.headers["www-authenticate"]
            assert r.json()["error_description"] == "send exactly one Authorization header"
