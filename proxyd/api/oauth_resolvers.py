"""GraphQL resolvers for the OAuth capability: clients (list, show, delete), issued tokens and
browser login sessions (list, revoke), metrics, and a proxy's own GitHub app (whose secret is never returned).
Queries need scope user, mutations admin. Revocations publish `token_revoked`, so every process
refuses the token at once.
"""

from __future__ import annotations

import time
from typing import Any

from ariadne import MutationType, ObjectType, QueryType

from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.api.resolvers import guarded
from proxyd.oauth.store import TOKEN_REVOKED, OAuthStore
from proxyd.store.models import Proxy

query = QueryType()
mutation = MutationType()
proxy_type = ObjectType("Proxy")
token_type = ObjectType("OAuthToken")
client_type = ObjectType("OAuthClient")
session_type = ObjectType("OAuthSession")


def _store(info) -> OAuthStore:
    context: ApiContext = info.context
    return OAuthStore(context.store.redis)


def _app(hostname: str, data: dict | None) -> dict | None:
    if not data:
        return None
    return {"hostname": hostname, "client_id": data["client_id"], "has_secret": True}


async def _revoke(info, records: list[dict[str, Any]]) -> int:
    entries = {r["jti"]: int(r["exp"]) for r in records}
    if entries:
        await _store(info).revoke_jtis(entries)
        await info.context.store.publish_event(TOKEN_REVOKED, None, jtis=entries)
    return len(entries)


@query.field("oauthClients")
@guarded("user")
async def resolve_clients(_, info) -> list[dict]:
    return await _store(info).list_clients()


@query.field("oauthClient")
@guarded("user")
async def resolve_client(_, info, client_id: str) -> dict | None:
    return await _store(info).get_client(client_id)


@query.field("oauthTokens")
@guarded("user")
async def resolve_tokens(_, info, user: str | None = None) -> list[dict]:
    return await _store(info).list_tokens(user)


@query.field("oauthSessions")
@guarded("user")
async def resolve_sessions(_, info, user: str | None = None) -> list[dict]:
    return await _store(info).list_sessions(user)


@query.field("oauthMetrics")
@guarded("user")
async def resolve_metrics(_, info) -> dict:
    store = _store(info)
    now = time.time()
    tokens = await store.list_tokens()
    return {
        "counters": await store.metrics(),
        "clients": len(await store.list_clients()),
        "active_tokens": sum(1 for t in tokens if t["exp"] > now and not t["revoked"]),
        "revoked_in_memory": len(info.context.manager.auth.revoked),
    }


@query.field("githubApp")
@guarded("user")
async def resolve_github_app(_, info, hostname: str) -> dict | None:
    return _app(hostname, await _store(info).github_app(hostname))


@mutation.field("deleteOAuthClient")
@guarded("admin")
async def resolve_delete_client(_, info, client_id: str) -> bool:
    return await _store(info).delete_client(client_id)


@mutation.field("revokeOAuthToken")
@guarded("admin")
async def resolve_revoke_token(_, info, jti: str) -> bool:
    record = await _store(info).get_token(jti)
    if record is None:
        raise api_error(f"no token {jti!r} (it may have expired).", "NOT_FOUND")
    return await _revoke(info, [record]) == 1


@mutation.field("revokeUserTokens")
@guarded("admin")
async def resolve_revoke_user(_, info, user: str) -> int:
    records = [t for t in await _store(info).list_tokens(user) if not t["revoked"]]
    return await _revoke(info, records)


@mutation.field("revokeOAuthSession")
@guarded("admin")
async def resolve_revoke_session(_, info, id: str) -> bool:
    if not await _store(info).delete_session(id):
        raise api_error(f"no session {id!r} (it may have expired).", "NOT_FOUND")
    return True


@mutation.field("setGitHubApp")
@guarded("admin")
async def resolve_set_github_app(
    _, info, hostname: str, client_id: str, client_secret: str
) -> dict:
    hostname = hostname.strip().lower()
    if await info.context.store.get_proxy(hostname) is None:
        raise api_error(f"no proxy {hostname!r}.", "NOT_FOUND")
    if not client_id.strip() or not client_secret.strip():
        raise api_error("clientId and clientSecret must not be empty.", "BAD_USER_INPUT")
    await _store(info).set_github_app(hostname, client_id.strip(), client_secret.strip())
    return {"hostname": hostname, "client_id": client_id.strip(), "has_secret": True}


@mutation.field("deleteGitHubApp")
@guarded("admin")
async def resolve_delete_github_app(_, info, hostname: str) -> bool:
    return await _store(info).delete_github_app(hostname.strip().lower())


@proxy_type.field("githubApp")
async def resolve_proxy_github_app(proxy: Proxy, info) -> dict | None:
    return _app(proxy.hostname, await _store(info).github_app(proxy.hostname))


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
