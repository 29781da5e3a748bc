"""FakeGitHub: a local stand-in for GitHub's OAuth web flow, device flow and the /user,
/user/emails, /user/orgs shapes, for tests only. It is a real HTTP server on loopback, run in a
thread with its own trio loop, so that synchronous tests (and the proxyd child process, which
calls it from /callback) can use it alike.

The "browser session" at GitHub is simulated: `/login/oauth/authorize` approves at once as
`fake.login` (set it per test) and redirects to redirect_uri with a code and the state.
"""

from __future__ import annotations

import json
import secrets
import threading
from urllib.parse import parse_qs, urlencode

import attrs
import trio

from proxyd.edge.listener import bound_port, serve_asgi

USERS = {
    "alice": {"id": 1001, "name": "Alice", "emails": ["alice@example.com"], "orgs": ["acme"]},
    "bob": {"id": 1002, "name": "Bob", "emails": ["bob@other.org"], "orgs": []},
    "carol": {"id": 1003, "name": "Carol", "emails": ["carol@example.com"], "orgs": ["acme"]},
}


@attrs.define
class FakeGitHub:
    client_id: str = "gh-client-id"
    client_secret: str = "gh-client-secret"
    login: str = "alice"
    port: int = 0
    codes: dict[str, str] = attrs.Factory(dict)
    tokens: dict[str, str] = attrs.Factory(dict)
    devices: dict[str, dict] = attrs.Factory(dict)
    authorize_requests: list[dict] = attrs.Factory(list)
    _thread: threading.Thread | None = None
    _token: trio.lowlevel.TrioToken | None = None
    _shutdown: trio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "GITHUB_BASE_URL": self.url,
            "GITHUB_API_URL": self.url + "/api/v3",
            "GITHUB_CLIENT_ID": self.client_id,
            "GITHUB_CLIENT_SECRET": self.client_secret,
        }

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        ready = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._shutdown = trio.Event()
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(
                    lambda task_status: serve_asgi(
                        self.app,
                        "127.0.0.1:0",
                        shutdown_event=self._shutdown,
                        graceful_timeout=0.2,
                        task_status=task_status,
                    )
                )
                self.port = bound_port(binds)
                ready.set()

        self._thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the GitHub stand-in did not start")
        return self

    def stop(self) -> None:
        if self._token is not None and self._shutdown is not None:
            trio.from_thread.run_sync(self._shutdown.set, trio_token=self._token)
        if self._thread is not None:
            self._thread.join(5)

    # -- the HTTP app ---------------------------------------------------------------------------
    async def app(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                done = message["type"] == "lifespan.shutdown"
                await send({"type": message["type"] + ".complete"})
                if done:
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, out_headers, payload = self.handle(
            scope["method"], scope["path"], query, form, headers
        )
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": payload})

    def handle(self, method, path, query, form, headers):
        def as_json(data, status=200):
            return status, [(b"content-type", b"application/json")], json.dumps(data).encode()

        if path == "/login/oauth/authorize":
            self.authorize_requests.append(query)
            if query.get("client_id") != self.client_id:
                return 404, [], b"unknown client"
            code = secrets.token_hex(10)
            self.codes[code] = self.login
            location = (
                query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
            )
            return 302, [(b"location", location.encode())], b""
        if path == "/login/oauth/access_token" and method == "POST":
            if form.get("client_id") != self.client_id:
                return as_json({"error": "incorrect_client_credentials"})
            if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
                device = self.devices.get(form.get("device_code", ""))
                if device is None:
                    return as_json({"error": "expired_token"})
                if not device.get("login"):
                    return as_json({"error": "authorization_pending"})
                return as_json(self._token_for(device["login"]))
            if form.get("client_secret") != self.client_secret:
                return as_json({"error": "incorrect_client_credentials"})
            login = self.codes.pop(form.get("code", ""), None)
            if login is None:
                return as_json({"error": "bad_verification_code"})
            return as_json(self._token_for(login))
        if path == "/login/device/code" and method == "POST":
            code = secrets.token_hex(20)
            user_code = secrets.token_hex(4).upper()
            self.devices[code] = {"user_code": user_code}
            return as_json(
                {
                    "device_code": code,
                    "user_code": user_code,
                    "verification_uri": self.url + "/login/device",
                    "expires_in": 900,
                    "interval": 1,
                }
            )
        if path.startswith("/api/v3/user"):
            auth = headers.get("authorization", "")
            login = self.tokens.get(auth.split(" ", 1)[-1])
            if login is None:
                return as_json({"message": "Bad credentials"}, 401)
            user = USERS[login]
            if path == "/api/v3/user":
                return as_json(
                    {"login": login, "id": user["id"], "name": user["name"], "email": None}
                )
            if path == "/api/v3/user/emails":
                return as_json(
                    [
                        {"email": e, "primary": i == 0, "verified": True, "visibility": "private"}
                        for i, e in enumerate(user["emails"])
                    ]
                    + [
                        {
                            "email": f"unverified-{login}@evil.test",
                            "primary": False,
                            "verified": False,
                        }
                    ]
                )
            if path == "/api/v3/user/orgs":
                return as_json([{"login": o, "id": 500 + i} for i, o in enumerate(user["orgs"])])
        return 404, [], b"not found"

    def _token_for(self, login: str) -> dict:
        token = "gho_" + secrets.token_hex(16)
        self.tokens[token] = login
        return {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}

    def approve_device(self, user_code: str, login: str) -> None:
        for device in self.devices.values():
            if device["user_code"] == user_code:
                device["login"] = login
