"""Authorization server metadata (RFC 8414), also as /.well-known/openid-configuration, in the
root and path-suffixed forms for the issuer; /jwks (public signing keys, old ones kept so their
tokens verify until they expire; with OAUTH_JWT_PRIVATE_KEY_B64 only that key and the kids in
OAUTH_JWT_RETAINED_KIDS) and /userinfo.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, request

from proxyd.oauth.http import json_response, oauth_error
from proxyd.oauth.keys import published_keys
from proxyd.oauth.scopes import BUILTIN
from proxyd.oauth.server import AuthServer
from proxyd.oauth.tokens import InvalidToken

AS_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"


def document(server: AuthServer) -> dict[str, Any]:
    url = server.url
    return {
        "issuer": server.issuer,
        "authorization_endpoint": url("/authorize"),
        "token_endpoint": url("/token"),
        "registration_endpoint": url("/register"),
        "jwks_uri": url("/jwks"),
        "revocation_endpoint": url("/revoke"),
        "introspection_endpoint": url("/introspect"),
        "device_authorization_endpoint": url("/device/code"),
        "userinfo_endpoint": url("/userinfo"),
        "scopes_supported": list(BUILTIN),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": True,
        "resource_indicators_supported": True,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "email", "scope", "client_id"],
        "service_documentation": url("/.well-known/oauth-authorization-server"),
    }


def register(bp: Blueprint, server: AuthServer) -> None:
    issuer_path = urlsplit(server.issuer).path.rstrip("/")
    served = {AS_WELL_KNOWN, OIDC_WELL_KNOWN}
    if issuer_path:
        served |= {AS_WELL_KNOWN + issuer_path, issuer_path + OIDC_WELL_KNOWN}

    async def metadata(rest: str = "") -> Any:
        if request.path not in served:
            return oauth_error("not_found", "no authorization server metadata here.", 404)
        return json_response(document(server), headers={"Cache-Control": "max-age=300"})

    for n, path in enumerate((AS_WELL_KNOWN, OIDC_WELL_KNOWN)):
        bp.add_url_rule(path, f"meta{n}", metadata, methods=["GET"])
        bp.add_url_rule(f"{path}/<path:rest>", f"meta{n}s", metadata, methods=["GET"])
    if issuer_path:
        bp.add_url_rule(issuer_path + OIDC_WELL_KNOWN, "meta-oidc-suffix", metadata)

    @bp.get("/jwks")
    async def jwks() -> Any:
        lifetime = max(
            server.settings.oauth_access_token_lifetime, 86400
        )  # also covers `proxyd token issue` tokens of up to a day
        settings = server.settings
        keyset = await published_keys(
            server.store.redis,
            lifetime,
            settings.oauth_jwt_private_key_b64,
            settings.oauth_jwt_retained_kids,
        )
        keys = []
        for key in keyset.keys:
            public = key.as_dict(private=False)
            public.update({"use": "sig", "alg": "RS256", "kid": key.kid})
            keys.append(public)
        return json_response({"keys": keys}, headers={"Cache-Control": "max-age=300"})

    @bp.route("/userinfo", methods=["GET", "POST"])
    async def userinfo() -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if scheme.lower() != "bearer" or not token.strip():
            return oauth_error(
                "invalid_token", "send Authorization: Bearer <token>.", 401, challenge
            )
        try:
            identity = await server.verifier.verify(token.strip(), audience=None)
        except InvalidToken as exc:
            return oauth_error("invalid_token", str(exc), 401, challenge)
        if await server.store.is_revoked(str(identity.claims.get("jti"))):
            return oauth_error("invalid_token", "the token was revoked.", 401, challenge)
        claims = identity.claims
        return json_response(
            {
                "sub": identity.subject,
                "preferred_username": identity.subject,
                "email": claims.get("email"),
                "orgs": claims.get("orgs", []),
                "scope": claims.get("scope", ""),
            }
        )
