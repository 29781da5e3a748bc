"""GraphQL resolvers for the OAuth capability: clients (list, show, delete), issued tokens and
browser login sessions (list, revoke), metrics, and a proxy's own GitHub app (whose secret is never returned).
Queries need scope user, mutations admin. Revocations publish `token_revoked`, so every process
refuses the token at once.
"""

from __future__ import annotations

from ariadne import MutationType, ObjectType, QueryType

from proxyd.api.resolvers import guarded
from proxyd.manage import oauth
from proxyd.store.models import Proxy

query = QueryType()
mutation = MutationType()
proxy_type = ObjectType("Proxy")
token_type = ObjectType("OAuthToken")
client_type = ObjectType("OAuthClient")
session_type = ObjectType("OAuthSession")


@query.field("oauthClients")
@guarded("user")
async def resolve_clients(_, info) -> list[dict]:
    return await oauth.list_clients(info.context)


@query.field("oauthClient")
@guarded("user")
async def resolve_client(_, info, client_id: str) -> dict | None:
    return await oauth.get_client(info.context, client_id)


@query.field("oauthTokens")
@guarded("user")
async def resolve_tokens(_, info, user: str | None = None) -> list[dict]:
    return await oauth.list_tokens(info.context, user)


@query.field("oauthSessions")
@guarded("user")
async def resolve_sessions(_, info, user: str | None = None) -> list[dict]:
    return await oauth.list_sessions(info.context, user)


@query.field("oauthMetrics")
@guarded("user")
async def resolve_metrics(_, info) -> dict:
    return await oauth.metrics(info.context)


@query.field("githubApp")
@guarded("user")
async def resolve_github_app(_, info, hostname: str) -> dict | None:
    return await oauth.github_app(info.context, hostname)


@mutation.field("deleteOAuthClient")
@guarded("admin")
async def resolve_delete_client(_, info, client_id: str) -> bool:
    return await oauth.delete_client(info.context, client_id)


@mutation.field("revokeOAuthToken")
@guarded("admin")
async def resolve_revoke_token(_, info, jti: str) -> bool:
    return await oauth.revoke_token(info.context, jti)


@mutation.field("revokeUserTokens")
@guarded("admin")
async def resolve_revoke_user(_, info, user: str) -> int:
    return await oauth.revoke_user_tokens(info.context, user)


@mutation.field("revokeOAuthSession")
@guarded("admin")
async def resolve_revoke_session(_, info, id: str) -> bool:
    return await oauth.revoke_session(info.context, id)


@mutation.field("setGitHubApp")
@guarded("admin")
async def resolve_set_github_app(
    _, info, hostname: str, client_id: str, client_secret: str
) -> dict:
    return await oauth.set_github_app(info.context, hostname, client_id, client_secret)


@mutation.field("deleteGitHubApp")
@guarded("admin")
async def resolve_delete_github_app(_, info, hostname: str) -> bool:
    return await oauth.delete_github_app(info.context, hostname)


@proxy_type.field("githubApp")
async def resolve_proxy_github_app(proxy: Proxy, info) -> dict | None:
    return await oauth.github_app(info.context, proxy.hostname)


@token_type.field("subject")
def resolve_subject(record: dict, _) -> str:
    return record["sub"]


@token_type.field("audience")
def resolve_audience(record: dict, _) -> list[str]:
    return list(record.get("aud") or [])


@token_type.field("issuedAt")
def resolve_issued(record: dict, _) -> int:
    return int(record["iat"])


@token_type.field("expiresAt")
def resolve_expires(record: dict, _) -> int:
    return int(record["exp"])


@client_type.field("redirectUris")
def resolve_redirects(client: dict, _) -> list[str]:
    return list(client.get("redirect_uris") or [])


@session_type.field("createdAt")
def resolve_session_created(record: dict, _) -> int:
    return int(record["created_at"])


@session_type.field("expiresAt")
def resolve_session_expires(record: dict, _) -> int:
    return int(record["expires_at"])


bindables = [query, mutation, proxy_type, token_type, client_type, session_type]
