"""Token revocation (RFC 7009): a refresh token revokes its whole family; an access token its
jti. Revocations go to `oauth:revoked` and out as a `token_revoked` event, which every proxyd
process applies to its in-memory list, so the proxy refuses the token at once everywhere.
Unknown or foreign tokens still answer 200, as the RFC asks.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from proxyd.oauth.clients import authenticate
from proxyd.oauth.http import json_response, params
from proxyd.oauth.server import AuthServer
from proxyd.oauth.tokens import InvalidToken


async def revoke_token(server: AuthServer, token: str, client_id: str | None) -> bool:
    """Revoke a refresh or access token (of client_id, or of anyone when None)."""
    refresh = await server.store.get_refresh(token)
    if refresh is not None:
        if client_id is not None and refresh["client_id"] != client_id:
            return False
        await server.revoke_family(refresh["family"])
        return True
    try:
        identity = await server.verifier.verify(token, audience=None)
    except InvalidToken:
        return False
    if client_id is not None and identity.client_id != client_id:
        return False
    claims = identity.claims
    await server.revoke({str(claims["jti"]): int(claims["exp"])})
    return True


def register(bp: Blueprint, server: AuthServer) -> None:
    @bp.post("/revoke")
    async def revoke() -> Any:
        form = await params()
        client = await authenticate(server, form)
        token = form.get("token", "")
        if not token:
            from proxyd.oauth.server import OAuthFailure

            raise OAuthFailure("invalid_request", "token is required.")
        await revoke_token(server, token, client["client_id"])
        return json_response({})
