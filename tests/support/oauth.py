"""Helpers for the OAuth tests: a proxyd wired to the GitHub stand-in, PKCE, registration, and a
headless "browser" that follows redirects hop by hop (cookies kept) and approves consent pages.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.fake_github import FakeGitHub
from tests.support.processes import free_port

REDIRECT = "http://127.0.0.1:8976/callback"


def start_oauth_proxyd(
    start_proxyd, github: FakeGitHub, name: str = "proxyd", issuer: str = "", **env: str
):
    """proxyd whose issuer is its own API port (http://127.0.0.1:API_PORT) unless given."""
    api_port = free_port()
    return start_proxyd(
        name,
        API_PORT=str(api_port),
        OAUTH_ISSUER=issuer or f"http://127.0.0.1:{api_port}",
        OAUTH_DEVICE_POLL_INTERVAL="1",
        **{**github.env(), **env},
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def register(issuer: str, **metadata) -> dict:
    body = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "client_name": "Test client",
        "grant_types": ["authorization_code", "refresh_token"],
        **metadata,
    }
    response = httpx.post(f"{issuer}/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class HostMap(httpx.HTTPTransport):
    """Connects names such as app.test to 127.0.0.1:port while keeping the Host header."""

    def __init__(self, hosts: dict[str, int]) -> None:
        super().__init__()
        self.hosts = hosts

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        original = request.url
        if original.host in self.hosts:
            request.url = original.copy_with(host="127.0.0.1", port=self.hosts[original.host])
        try:
            return super().handle_request(request)
        finally:
            request.url = original  # cookies are stored for the name, not for 127.0.0.1


class Browser:
    def __init__(self, hosts: dict[str, int] | None = None) -> None:
        self.client = httpx.Client(
            transport=HostMap(hosts or {}), timeout=15, headers={"Accept": "text/html"}
        )
        self.pages: list[httpx.Response] = []

    def run(self, url: str, stop_prefix: str = REDIRECT, approve: bool = True) -> dict[str, str]:
        """Follow url until a redirect to stop_prefix; returns that redirect's query."""
        method, data = "GET", None
        for _ in range(20):
            response = self.client.request(method, url, data=data)
            self.pages.append(response)
            method, data = "GET", None
            if response.status_code in (301, 302, 303, 307, 308):
                url = str(response.url.join(response.headers["location"]))
                if url.startswith(stop_prefix):
                    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                continue
            form = consent_form(response.text) if response.status_code == 200 else None
            if form is None:
                return {"_status": str(response.status_code), "_body": response.text}
            url, data = form
            data["action"] = "approve" if approve else "deny"
            method = "POST"
        raise AssertionError("too many redirects")


def consent_form(html: str) -> tuple[str, dict[str, str]] | None:
    action = re.search(r"<form method=post action='([^']+)'", html)
    if action is None or "name=txn" not in html:
        return None
    fields = dict(re.findall(r"<input type=hidden name=(\w+) value='([^']*)'>", html))
    return action.group(1), fields


def authorize_url(issuer: str, client_id: str, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        **extra,
    }
    return f"{issuer}/authorize?" + str(httpx.QueryParams(params))


def exchange(issuer: str, client_id: str, code: str, verifier: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{issuer}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            **extra,
        },
    )


@contextlib.contextmanager
def metadata_documents(cache_control: str = "no-store") -> Iterator[tuple[str, dict[str, dict]]]:
    """A loopback server for Client ID Metadata Documents: yields (base URL, documents), where
    documents maps a path (e.g. "/client.json") to the JSON served there (404 otherwise)."""
    documents: dict[str, dict] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", cache_control)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", documents
    finally:
        httpd.shutdown()
