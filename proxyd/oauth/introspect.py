"""Token introspection (RFC 7662) for confidential clients, limited to the caller's own access
tokens: a token issued to another client, a refresh token, or anything invalid, expired, revoked
or unknown answers just {"active": false}, so introspection reveals nothing about other grants
(RFC 7662 section 4)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from proxyd.oauth.clients import authenticate
from proxyd.oauth.http import json_response, params
from proxyd.oauth.server import AuthServer
from proxyd.oauth.tokens import InvalidToken

INACTIVE = {"active": False}


def register(bp: Blueprint, server: AuthServer) -> None:
    @bp.post("/introspect")
    async def introspect() -> Any:
        form = await params()
        client = await authenticate(server, form, allow_public=False)
        token = form.get("token", "")
        if not token or await server.store.get_refresh(token) is not None:
            return json_response(INACTIVE)  # refresh tokens are never introspected
        try:
            identity = await server.verifier.verify(token, audience=None)
        except InvalidToken:
            return json_response(INACTIVE)
        claims = identity.claims
        if identity.client_id != client["client_id"]:
            return json_response(INACTIVE)
        if await server.store.is_revoked(str(claims.get("jti"))):
            return json_response(INACTIVE)
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
