"""The token endpoint: authorization_code (PKCE S256 verified), refresh_token (rotated at every
use; presenting a spent one revokes its whole family, access tokens included) and device_code
(RFC 8628). Every answer carries Cache-Control: no-store. Failed attempts are rate limited per
client (proxyd.oauth.limits); a proxy's built-in client cannot redeem codes here.
"""

from __future__ import annotations

import hmac
import re
import time
from typing import Any

from quart import Blueprint, request

from proxyd.oauth import limits
from proxyd.oauth import scopes as scope_rules
from proxyd.oauth.clients import authenticate, basic_credentials, builtin_host
from proxyd.oauth.http import json_response, params, repeated
from proxyd.oauth.pkce import s256
from proxyd.oauth.server import AuthServer, OAuthFailure
from proxyd.oauth.store import digest

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
# Errors that count as a failed attempt (guessing secrets, codes, verifiers or refresh tokens);
# authorization_pending and slow_down while a device flow polls do not.
COUNTED = ("invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type")


def _resources(form_resources: list[str], allowed: list[str]) -> list[str]:
    """RFC 8707 at the token endpoint: a subset of what was authorized (default: all of it)."""
    if not form_resources:
        return allowed
    extra = [r for r in form_resources if r not in allowed]
    if extra:
        raise OAuthFailure("invalid_target", f"resource {extra[0]!r} was not authorized.")
    return form_resources


def _allowed(client: dict[str, Any], grant: str) -> None:
    if grant not in client.get("grant_types", ["authorization_code", "refresh_token"]):
        raise OAuthFailure("unauthorized_client", f"this client may not use {grant}.")


async def _code_grant(server: AuthServer, client: dict, form: dict, resources: list[str]) -> dict:
    _allowed(client, "authorization_code")
    code = form.get("code", "")
    data = await server.store.take_code(code) if code else None
    used_key = f"oauth:code_used:{digest(code)}"
    if data is None:
        family = await server.store.redis.get(used_key) if code else None
        if family:  # RFC 6749 4.1.2: a code used twice revokes what it produced
            await server.revoke_family(family)
        raise OAuthFailure("invalid_grant", "the code is invalid, expired or already used.")
    if data["client_id"] != client["client_id"]:
        raise OAuthFailure("invalid_grant", "the code was issued to another client.")
    if form.get("redirect_uri", data["redirect_uri"]) != data["redirect_uri"]:
        raise OAuthFailure("invalid_grant", "redirect_uri differs from the authorization request.")
    verifier = form.get("code_verifier", "")
    if not VERIFIER.match(verifier) or not hmac.compare_digest(
        s256(verifier), data["code_challenge"]
    ):
        raise OAuthFailure("invalid_grant", "code_verifier does not match the code_challenge.")
    chosen = _resources(resources, data["resources"])
    audiences = server.audiences(server.targets(chosen)) if chosen else []
    body = await server.issue(
        user=data["user"],
        client_id=client["client_id"],
        scopes=data["scopes"],
        audiences=audiences,
        resources=data["resources"],
        refresh="refresh_token" in client.get("grant_types", ["refresh_token"]),
    )
    family = (await server.store.get_refresh(body["refresh_token"]) or {}).get("family")
    if family:
        await server.store.redis.set(used_key, family, ex=3600)
    return body


async def _refresh_grant(
    server: AuthServer, client: dict, form: dict, resources: list[str]
) -> dict:
    _allowed(client, "refresh_token")
    token = form.get("refresh_token", "")
    data = await server.store.get_refresh(token) if token else None
    if data is None:
        raise OAuthFailure("invalid_grant", "the refresh token is invalid or expired.")
    if data["client_id"] != client["client_id"]:
        raise OAuthFailure("invalid_grant", "the refresh token was issued to another client.")
    if await server.store.family_revoked(data["family"]):
        raise OAuthFailure("invalid_grant", "the refresh token was revoked.")
    if not await server.store.spend_refresh(token):
        await server.revoke_family(data["family"])
        await server.store.count("refresh_reuse_detected")
        raise OAuthFailure(
            "invalid_grant", "the refresh token was already used; its grant is now revoked."
        )
    scopes = data["scopes"]
    if form.get("scope"):
        asked = form["scope"].split()
        if any(s not in scopes for s in asked):
            raise OAuthFailure("invalid_scope", "a refresh cannot add scopes.")
        scopes = asked
    # The policy today, not the one at sign-in: a user removed from a list loses the scope here.
    still, reason = scope_rules.decide(
        server.settings, server.targets(data["resources"]), data["user"], scopes
    )
    if reason is not None or not still:
        raise OAuthFailure("invalid_grant", "the user no longer has access to these scopes.")
    scopes = still
    chosen = _resources(resources, data["resources"])
    audiences = server.audiences(server.targets(chosen)) if chosen else []
    return await server.issue(
        user=data["user"],
        client_id=client["client_id"],
        scopes=scopes,
        audiences=audiences,
        resources=data["resources"],
        family=data["family"],
    )


async def _device_grant(server: AuthServer, client: dict, form: dict) -> dict:
    _allowed(client, DEVICE_GRANT)
    device_code = form.get("device_code", "")
    data = await server.store.get_device(device_code) if device_code else None
    if data is None:
        raise OAuthFailure("expired_token", "the device code is invalid or expired.")
    if data["client_id"] != client["client_id"]:
        raise OAuthFailure("invalid_grant", "the device code was issued to another client.")
    if data["status"] == "denied":
        await server.store.delete_device(device_code)
        raise OAuthFailure("access_denied", "the user denied the request.")
    if data["status"] != "approved":
        now = time.time()
        too_fast = now - data.get("last_poll", 0) < data["interval"]
        data["last_poll"] = now
        await server.store.update_device(digest(device_code), data)
        if too_fast:
            raise OAuthFailure("slow_down", f"poll at most every {data['interval']} s.")
        raise OAuthFailure("authorization_pending", "the user has not finished signing in.")
    await server.store.delete_device(device_code)
    user = data["user"]
    return await server.issue(
        user=user,
        client_id=client["client_id"],
        scopes=user.pop("scopes"),
        audiences=data["audiences"],
        resources=data["resources"],
    )


def register(bp: Blueprint, server: AuthServer) -> None:
    @bp.post("/token")
    async def token() -> Any:
        form = await params()
        dup = await repeated()
        if dup:
            raise OAuthFailure("invalid_request", f"parameter {dup} was given more than once.")
        who = _caller(form)
        limit = server.settings.oauth_token_failure_limit
        message = "too many failed token requests for this client"
        await limits.check(server.store.redis, "token", who, limit, message)
        try:
            body = await _grant(server, form)
        except OAuthFailure as exc:
            if exc.error in COUNTED:
                await limits.count(server.store.redis, "token", who, limit, message)
            raise
        return json_response(body)


def _caller(form: dict[str, str]) -> str:
    """Who a token request claims to be, for the failure limit (Basic user or client_id)."""
    try:
        basic = basic_credentials()
    except OAuthFailure:
        return "malformed-basic"
    return basic[0] if basic else form.get("client_id", "")


async def _grant(server: AuthServer, form: dict[str, str]) -> dict[str, Any]:
    client = await authenticate(server, form)
    if builtin_host(client["client_id"]) is not None:
        raise OAuthFailure(
            "unauthorized_client", "a proxy's built-in client is redeemed only by its proxy.", 400
        )
    resources = (await request.form).getlist("resource")
    grant = form.get("grant_type", "")
    if grant == "authorization_code":
        return await _code_grant(server, client, form, resources)
    if grant == "refresh_token":
        return await _refresh_grant(server, client, form, resources)
    if grant == DEVICE_GRANT:
        return await _device_grant(server, client, form)
    if not grant:
        raise OAuthFailure("invalid_request", "grant_type is required.")
    raise OAuthFailure("unsupported_grant_type", f"grant_type {grant!r} is not supported.")
