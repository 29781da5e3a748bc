"""Dynamic client registration (RFC 7591, open) and client configuration (RFC 7592: read, update,
delete with the registration access token).

Secrets (client_secret, registration_access_token) are returned once and stored only as SHA-256
digests. Redirect URIs follow proxyd.oauth.redirects (https, http on exactly 127.0.0.1, [::1] or
localhost, or a private-use scheme; no userinfo, fragment, backslash or encoded delimiter).
Registration is rate limited per client address (OAUTH_REGISTER_RATE_LIMIT per minute).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from quart import Blueprint, request

from proxyd.oauth import limits, redirects
from proxyd.oauth.http import json_response
from proxyd.oauth.server import AuthServer, OAuthFailure
from proxyd.oauth.store import digest, new_secret

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
GRANTS = ("authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code")
TEXT_FIELDS = (
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
)
PUBLIC_FIELDS = (
    "client_id",
    "client_id_issued_at",
    "client_secret_expires_at",
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "contacts",
    *TEXT_FIELDS,
)


def validate_metadata(data: Any) -> dict[str, Any]:
    """Registration metadata, checked and normalised (RFC 7591 section 2)."""
    if not isinstance(data, dict):
        raise OAuthFailure("invalid_client_metadata", "the body must be a JSON object.")
    method = data.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise OAuthFailure(
            "invalid_client_metadata",
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}.",
        )
    grants = data.get("grant_types") or ["authorization_code", "refresh_token"]
    if not isinstance(grants, list) or any(g not in GRANTS for g in grants):
        raise OAuthFailure("invalid_client_metadata", f"grant_types must be among {GRANTS}.")
    responses = data.get("response_types") or ["code"]
    if responses != ["code"]:
        raise OAuthFailure("invalid_client_metadata", 'response_types must be ["code"].')
    uris = redirects.check_all(data.get("redirect_uris") or [])
    if "authorization_code" in grants and not uris:
        raise OAuthFailure("invalid_redirect_uri", "redirect_uris is required.")
    client: dict[str, Any] = {
        "redirect_uris": uris,
        "token_endpoint_auth_method": method,
        "grant_types": grants,
        "response_types": responses,
    }
    for field in TEXT_FIELDS:
        value = data.get(field)
        if value is not None:
            if not isinstance(value, str) or len(value) > 500:
                raise OAuthFailure("invalid_client_metadata", f"{field} must be a short string.")
            client[field] = value
    contacts = data.get("contacts")
    if contacts is not None:
        if not isinstance(contacts, list) or not all(isinstance(c, str) for c in contacts):
            raise OAuthFailure("invalid_client_metadata", "contacts must be a list of strings.")
        client["contacts"] = contacts
    return client


def public_view(client: dict[str, Any]) -> dict[str, Any]:
    return {k: client[k] for k in PUBLIC_FIELDS if k in client}


def register(bp: Blueprint, server: AuthServer) -> None:
    lifetime = server.settings.oauth_client_lifetime

    async def _body() -> Any:
        try:
            return await request.get_json(force=True, silent=False)
        except Exception:  # noqa: BLE001 - any parse failure is the client's error
            raise OAuthFailure("invalid_client_metadata", "the body must be JSON.") from None

    @bp.post("/register")
    async def register_client() -> Any:
        address = request.scope.get("proxyd.client_ip") or request.remote_addr or "unknown"
        await limits.count(
            server.store.redis,
            "register",
            str(address),
            server.settings.oauth_register_rate_limit,
            "too many client registrations from this address",
        )
        client = validate_metadata(await _body())
        now = int(time.time())
        client_id = "client_" + new_secret(16)
        client.update(
            client_id=client_id,
            client_id_issued_at=now,
            client_secret_expires_at=0,
        )
        response = public_view(client)
        if client["token_endpoint_auth_method"] != "none":
            secret = new_secret(32)
            client["client_secret_hash"] = digest(secret)
            client["client_secret_expires_at"] = now + lifetime
            response.update(client_secret=secret, client_secret_expires_at=now + lifetime)
        registration_token = new_secret(32)
        client["registration_token_hash"] = digest(registration_token)
        await server.store.put_client(client, lifetime)
        await server.store.count("clients_registered")
        response.update(
            registration_access_token=registration_token,
            registration_client_uri=server.url(f"/register/{client_id}"),
        )
        return json_response(response, 201)

    async def _authorized(client_id: str) -> dict[str, Any]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        client = await server.store.get_client(client_id)
        stored = (client or {}).get("registration_token_hash", "")
        if (
            client is None
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(digest(token.strip()), stored)
        ):
            # RFC 7592: an unknown client and a wrong token look the same.
            raise OAuthFailure("invalid_token", "invalid registration access token.", 401)
        return client

    @bp.get("/register/<client_id>")
    async def read_client(client_id: str) -> Any:
        return json_response(public_view(await _authorized(client_id)))

    @bp.put("/register/<client_id>")
    async def update_client(client_id: str) -> Any:
        client = await _authorized(client_id)
        body = await _body()
        if isinstance(body, dict) and body.get("client_id", client_id) != client_id:
            raise OAuthFailure("invalid_client_metadata", "client_id cannot change.")
        if isinstance(body, dict) and body.get("client_secret") not in (None,):
            body.pop("client_secret")
        updated = validate_metadata(body)
        keep = ("client_id", "client_id_issued_at", "client_secret_expires_at")
        updated.update({k: client[k] for k in keep})
        for secret in ("client_secret_hash", "registration_token_hash"):
            if secret in client:
                updated[secret] = client[secret]
        if updated["token_endpoint_auth_method"] != client["token_endpoint_auth_method"]:
            raise OAuthFailure(
                "invalid_client_metadata", "token_endpoint_auth_method cannot change."
            )
        await server.store.put_client(updated, lifetime)
        return json_response(public_view(updated))

    @bp.delete("/register/<client_id>")
    async def delete_client(client_id: str) -> Any:
        await _authorized(client_id)
        await server.store.delete_client(client_id)
        return "", 204, {"Cache-Control": "no-store"}
