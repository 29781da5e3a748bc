"""Token introspection (RFC 7662) for confidential clients: active plus the token's claims, or
just {"active": false} for anything invalid, expired, revoked or unknown."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from proxyd.oauth.clients import authenticate
from proxyd.oauth.http import json_response, params
from proxyd.oauth.server import AuthServer
from proxyd.oauth.tokens import InvalidToken


def register(bp: Blueprint, server: AuthServer) -> None:
    @bp.post("/introspect")
    async def introspect() -> Any:
        form = await params()
        await authenticate(server, form, allow_public=False)
        token = form.get("token", "")
        refresh = await server.store.get_refresh(token) if token else None
        if refresh is not None:
            if await server.store.family_revoked(refresh["family"]):
                return json_response({"active": False})
            return json_response(
                {
                    "active": True,
                    "token_type": "refresh_token",
                    "client_id": refresh["client_id"],
                    "username": refresh["user"]["login"],
                    "sub": refresh["user"]["login"],
                    "scope": " ".join(refresh["scopes"]),
                }
            )
        try:
            identity = await server.verifier.verify(token, audience=None)
        except InvalidToken:
            return json_response({"active": False})
        claims = identity.claims
        if await server.store.is_revoked(str(claims.get("jti"))):
            return json_response({"active": False})
        return json_response(
            {
                "active": True,
                "token_type": "Bearer",
                "username": identity.subject,
                **{
                    k: claims[k]
                    for k in ("iss", "sub", "aud", "client_id", "scope", "exp", "iat", "jti")
                    if k in claims
                },
            }
        )
