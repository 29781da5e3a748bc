"""OAuth administration: registered clients, issued tokens, browser sessions (list, revoke),
counters, and a proxy's own GitHub app. Client secrets, token values and GitHub app secrets are
never returned: clients are shown through registration.public_view, tokens by their jti."""

from __future__ import annotations

import time
from typing import Any

from proxyd.manage.errors import ManageContext, ManageError, hostname_key
from proxyd.oauth.registration import public_view
from proxyd.oauth.store import TOKEN_REVOKED, OAuthStore


def _store(ctx: ManageContext) -> OAuthStore:
    return OAuthStore(ctx.store.redis)


def public_app(hostname: str, data: dict | None) -> dict | None:
    if not data:
        return None
    return {"hostname": hostname, "client_id": data["client_id"], "has_secret": True}


async def list_clients(ctx: ManageContext) -> list[dict[str, Any]]:
    return [public_view(c) for c in await _store(ctx).list_clients()]


async def get_client(ctx: ManageContext, client_id: str) -> dict[str, Any] | None:
    record = await _store(ctx).get_client(client_id)
    return public_view(record) if record else None


async def list_tokens(ctx: ManageContext, user: str | None = None) -> list[dict[str, Any]]:
    return await _store(ctx).list_tokens(user)


async def list_sessions(ctx: ManageContext, user: str | None = None) -> list[dict[str, Any]]:
    return await _store(ctx).list_sessions(user)


async def metrics(ctx: ManageContext) -> dict[str, Any]:
    store = _store(ctx)
    now = time.time()
    tokens = await store.list_tokens()
    return {
        "counters": await store.metrics(),
        "clients": len(await store.list_clients()),
        "active_tokens": sum(1 for t in tokens if t["exp"] > now and not t["revoked"]),
        "revoked_in_memory": len(ctx.manager.auth.revoked),
    }


async def github_app(ctx: ManageContext, hostname: str) -> dict | None:
    return public_app(hostname, await _store(ctx).github_app(hostname))


async def _revoke(ctx: ManageContext, records: list[dict[str, Any]]) -> int:
    entries = {r["jti"]: int(r["exp"]) for r in records}
    if entries:
        await _store(ctx).revoke_jtis(entries)
        await ctx.store.publish_event(TOKEN_REVOKED, None, jtis=entries)
    return len(entries)


async def delete_client(ctx: ManageContext, client_id: str) -> bool:
    return await _store(ctx).delete_client(client_id)


async def revoke_token(ctx: ManageContext, jti: str) -> bool:
    record = await _store(ctx).get_token(jti)
    if record is None:
        raise ManageError(f"no token {jti!r} (it may have expired).", "NOT_FOUND")
    return await _revoke(ctx, [record]) == 1


async def revoke_user_tokens(ctx: ManageContext, user: str) -> int:
    records = [t for t in await _store(ctx).list_tokens(user) if not t["revoked"]]
    return await _revoke(ctx, records)


async def revoke_session(ctx: ManageContext, session_id: str) -> bool:
    if not await _store(ctx).delete_session(session_id):
        raise ManageError(f"no session {session_id!r} (it may have expired).", "NOT_FOUND")
    return True


async def set_github_app(
    ctx: ManageContext, hostname: str, client_id: str, client_secret: str
) -> dict:
    hostname = hostname_key(hostname)
    if await ctx.store.get_proxy(hostname) is None:
        raise ManageError(f"no proxy {hostname!r}.", "NOT_FOUND")
    if not client_id.strip() or not client_secret.strip():
        raise ManageError("clientId and clientSecret must not be empty.", "BAD_USER_INPUT")
    await _store(ctx).set_github_app(hostname, client_id.strip(), client_secret.strip())
    return {"hostname": hostname, "client_id": client_id.strip(), "has_secret": True}


async def delete_github_app(ctx: ManageContext, hostname: str) -> bool:
    return await _store(ctx).delete_github_app(hostname_key(hostname))
