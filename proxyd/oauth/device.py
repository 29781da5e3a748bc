"""Device authorization (RFC 8628): /device/code hands out a device code and a short user code;
the user opens /device (the verification page), enters the code, approves on the consent page
and signs in with GitHub; the device polls /token with the device_code grant meanwhile.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from quart import Blueprint, Response, request

from proxyd.oauth import scopes as scope_rules
from proxyd.oauth.authorize import error_page, start_login
from proxyd.oauth.clients import authenticate, builtin_host
from proxyd.oauth.http import esc, json_response, page, params
from proxyd.oauth.server import AuthServer, OAuthFailure
from proxyd.oauth.store import new_secret

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words, easy to type


def user_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalize(code: str) -> str:
    raw = "".join(c for c in code.upper() if c.isalpha())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else ""


def entry_page(server: AuthServer, prefill: str = "", message: str = "") -> Response:
    body = (
        (f"<p><b>{esc(message)}</b></p>" if message else "")
        + "<p>Enter the code your device shows.</p>"
        f"<form method=post action='{esc(server.url('/device'))}'>"
        f"<input name=user_code value='{esc(prefill)}' autocomplete=off "
        "autocapitalize=characters required> <button>Continue</button></form>"
    )
    return page("Sign in a device", body, 400 if message else 200)


def register(bp: Blueprint, server: AuthServer) -> None:
    @bp.post("/device/code")
    async def device_code() -> Any:
        form = await params()
        client = await authenticate(server, form)
        if builtin_host(client["client_id"]) is not None:
            raise OAuthFailure("unauthorized_client", "this client may not use the device flow.")
        if "urn:ietf:params:oauth:grant-type:device_code" not in client.get("grant_types", []):
            raise OAuthFailure("unauthorized_client", "this client may not use the device flow.")
        resources = (await request.form).getlist("resource")
        targets = server.targets(resources)
        requested = form.get("scope", "").split() or scope_rules.default_scopes(targets)
        unknown = [s for s in requested if s not in scope_rules.offered(targets)]
        if unknown:
            raise OAuthFailure("invalid_scope", f"unknown scope {unknown[0]!r}.")
        proxy = server.main_proxy(targets)
        code, shown = new_secret(32), user_code()
        ttl = server.settings.oauth_session_timeout
        interval = server.settings.oauth_device_poll_interval
        await server.store.put_device(
            code,
            shown,
            {
                "client_id": client["client_id"],
                "client_name": client.get("client_name") or client["client_id"],
                "scopes": requested,
                "resources": resources,
                "audiences": server.audiences(targets),
                "proxy": proxy.hostname if proxy else None,
                "status": "pending",
                "interval": interval,
                "created": int(time.time()),
            },
            ttl,
        )
        return json_response(
            {
                "device_code": code,
                "user_code": shown,
                "verification_uri": server.url("/device"),
                "verification_uri_complete": server.url(f"/device?user_code={shown}"),
                "expires_in": ttl,
                "interval": interval,
            }
        )

    @bp.get("/device")
    async def device_page() -> Response:
        return entry_page(server, request.args.get("user_code", ""))

    @bp.post("/device")
    async def device_submit() -> Response:
        form = await params()
        shown = normalize(form.get("user_code", ""))
        found = await server.store.device_by_user_code(shown) if shown else None
        if found is None or found[1]["status"] != "pending":
            return entry_page(server, "", "That code is unknown, expired or already used.")
        data = found[1]
        txn = {
            "kind": "device",
            "user_code": shown,
            "client_id": data["client_id"],
            "client_name": data["client_name"],
            "redirect_uri": None,
            "scopes": data["scopes"],
            "resources": data["resources"],
            "audiences": data["audiences"],
            "proxy": data["proxy"],
        }
        try:
            return await start_login(server, txn)
        except OAuthFailure as exc:
            return error_page("Sign-in unavailable", exc.description, exc.status)
