"""OAuthStore: the authorization server's state in Redis (never touched on the proxy hot path).

Keys (reference layout, secrets hashed):
- `oauth:client:{id}` registered clients (JSON, expire after OAUTH_CLIENT_LIFETIME), `oauth:clients`
  the set of their ids;
- `oauth:state:{id}` logins in progress (consent transactions, upstream GitHub states), single-use;
- `oauth:code:{code}` authorization codes (single-use, 120 s);
- `oauth:token:{jti}` issued access tokens (for listing and revocation), `oauth:user_tokens:{user}`;
- `oauth:refresh:{sha256}` refresh tokens, keyed by the SHA-256 of the token so a Redis dump does
  not hold usable secrets; `oauth:family:{id}` a refresh family (its tokens and access tokens);
- `oauth:revoked` sorted set jti -> exp (loaded into every process's memory);
- `oauth:consent:{login}` what the user approved: "{client_id} {sha256 of resources and scopes}";
  `oauth:session:{id}` browser sessions (id = a hash of the cookie, never the cookie itself),
  indexed by `oauth:sessions` and `oauth:user_sessions:{login}`;
- `oauth:device:{sha256}` / `oauth:device_user:{code}` device authorizations;
- `oauth:github_app:{hostname}` a proxy's own GitHub OAuth app; `oauth:metrics` counters.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import coredis

TOKEN_REVOKED = "token_revoked"
CODE_TTL = 120
CONSENT_TTL = 86400 * 90
CLIENTS = "oauth:clients"
REVOKED = "oauth:revoked"
METRICS = "oauth:metrics"
SESSIONS = "oauth:sessions"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def session_key(cookie: str) -> str:
    """A browser session's id: half the SHA-256 of its cookie (lists never show the cookie)."""
    return digest(cookie)[:32]


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


class OAuthStore:
    def __init__(self, redis: coredis.Redis) -> None:
        self.redis = redis

    # -- generic JSON helpers -----------------------------------------------------------------
    async def _put(self, key: str, data: dict[str, Any], ttl: int | None) -> None:
        await self.redis.set(key, json.dumps(data, separators=(",", ":")), ex=ttl)

    async def _get(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(key)
        return json.loads(raw) if raw else None

    async def _take(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.getdel(key)
        return json.loads(raw) if raw else None

    async def count(self, name: str) -> None:
        await self.redis.hincrby(METRICS, name, 1)

    async def metrics(self) -> dict[str, int]:
        return {k: int(v) for k, v in (await self.redis.hgetall(METRICS)).items()}

    # -- clients ------------------------------------------------------------------------------
    async def put_client(self, client: dict[str, Any], ttl: int) -> None:
        await self._put(f"oauth:client:{client['client_id']}", client, ttl)
        await self.redis.sadd(CLIENTS, [client["client_id"]])

    async def get_client(self, client_id: str) -> dict[str, Any] | None:
        return await self._get(f"oauth:client:{client_id}")

    async def delete_client(self, client_id: str) -> bool:
        await self.redis.srem(CLIENTS, [client_id])
        return bool(await self.redis.delete([f"oauth:client:{client_id}"]))

    async def list_clients(self) -> list[dict[str, Any]]:
        ids = sorted(await self.redis.smembers(CLIENTS))
        out = []
        for client_id in ids:
            client = await self.get_client(client_id)
            if client is None:
                await self.redis.srem(CLIENTS, [client_id])
            else:
                out.append(client)
        return out

    # -- single-use states and codes --------------------------------------------------------------
    async def put_state(self, state: str, data: dict[str, Any], ttl: int) -> None:
        await self._put(f"oauth:state:{state}", data, ttl)

    async def get_state(self, state: str) -> dict[str, Any] | None:
        return await self._get(f"oauth:state:{state}")

    async def take_state(self, state: str) -> dict[str, Any] | None:
        return await self._take(f"oauth:state:{state}")

    async def put_code(self, code: str, data: dict[str, Any]) -> None:
        await self._put(f"oauth:code:{digest(code)}", data, CODE_TTL)

    async def take_code(self, code: str) -> dict[str, Any] | None:
        return await self._take(f"oauth:code:{digest(code)}")

    # -- access tokens ----------------------------------------------------------------------------
    async def record_token(self, record: dict[str, Any]) -> None:
        ttl = max(1, int(record["exp"] - time.time()))
        await self._put(f"oauth:token:{record['jti']}", record, ttl)
        await self.redis.sadd(f"oauth:user_tokens:{record['sub']}", [record["jti"]])
        await self.redis.expire(f"oauth:user_tokens:{record['sub']}", ttl, coredis.PureToken.GT)
        if record.get("family"):
            await self.redis.sadd(f"oauth:family:{record['family']}:jtis", [record["jti"]])
            await self.redis.expire(f"oauth:family:{record['family']}:jtis", 86400 * 400)

    async def get_token(self, jti: str) -> dict[str, Any] | None:
        return await self._get(f"oauth:token:{jti}")

    async def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        if user:
            users = [user]
        else:
            users = [k.split(":", 2)[2] async for k in self.redis.scan_iter("oauth:user_tokens:*")]
        out = []
        for name in users:
            for jti in sorted(await self.redis.smembers(f"oauth:user_tokens:{name}")):
                record = await self.get_token(jti)
                if record is None:
                    await self.redis.srem(f"oauth:user_tokens:{name}", [jti])
                else:
                    record["revoked"] = await self.is_revoked(jti)
                    out.append(record)
        return out

    async def revoke_jtis(self, entries: dict[str, int]) -> None:
        """Add jti -> exp entries to the revocation list (the caller publishes the event)."""
        if entries:
            await self.redis.zadd(REVOKED, entries)
        await self.redis.zremrangebyscore(REVOKED, 0, time.time())

    async def is_revoked(self, jti: str) -> bool:
        return await self.redis.zscore(REVOKED, jti) is not None

    async def revoked(self) -> dict[str, float]:
        now = time.time()
        items = await self.redis.zrange(
            REVOKED, now, "+inf", sortby=coredis.PureToken.BYSCORE, withscores=True
        )
        return {item[0]: float(item[1]) for item in items}

    # -- refresh tokens and families ----------------------------------------------------------------
    async def put_refresh(self, token: str, data: dict[str, Any], ttl: int) -> None:
        await self._put(f"oauth:refresh:{digest(token)}", data, ttl)
        await self.redis.sadd(f"oauth:family:{data['family']}:refresh", [digest(token)])
        await self.redis.expire(f"oauth:family:{data['family']}:refresh", ttl)

    async def get_refresh(self, token: str) -> dict[str, Any] | None:
        return await self._get(f"oauth:refresh:{digest(token)}")

    async def spend_refresh(self, token: str) -> bool:
        """Mark a refresh token used; False when it already was (reuse)."""
        key = f"oauth:refresh:{digest(token)}"
        marker = await self.redis.set(
            f"{key}:spent", "1", condition=coredis.PureToken.NX, ex=86400 * 400
        )
        return bool(marker)

    async def revoke_family(self, family: str) -> dict[str, int]:
        """Delete every refresh token of the family; return its access tokens' jti -> exp."""
        hashes = await self.redis.smembers(f"oauth:family:{family}:refresh")
        if hashes:
            await self.redis.delete([f"oauth:refresh:{h}" for h in hashes])
        await self.redis.set(f"oauth:family:{family}:revoked", "1", ex=86400 * 400)
        entries = {}
        for jti in await self.redis.smembers(f"oauth:family:{family}:jtis"):
            record = await self.get_token(jti)
            entries[jti] = int(record["exp"]) if record else int(time.time()) + 86400
        return entries

    async def family_revoked(self, family: str) -> bool:
        return bool(await self.redis.exists([f"oauth:family:{family}:revoked"]))

    # -- consent, sessions, device codes, per-proxy GitHub apps -------------------------------------
    @staticmethod
    def _consent(client_id: str, resources: list[str], scopes: list[str]) -> str:
        grant = json.dumps([sorted(set(resources)), sorted(set(scopes))], separators=(",", ":"))
        return f"{client_id} {digest(grant)}"

    async def approve(
        self, login: str, client_id: str, resources: list[str], scopes: list[str]
    ) -> None:
        """Remember that login approved client_id for exactly these resources and scopes."""
        key = f"oauth:consent:{login}"
        await self.redis.sadd(key, [self._consent(client_id, resources, scopes)])
        await self.redis.expire(key, CONSENT_TTL)

    async def approved(
        self, login: str, client_id: str, resources: list[str], scopes: list[str]
    ) -> bool:
        member = self._consent(client_id, resources, scopes)
        return bool(await self.redis.sismember(f"oauth:consent:{login}", member))

    async def put_session(self, cookie: str, login: str, client_id: str, ttl: int) -> str:
        """Record a browser login session; its id is a hash of the cookie value."""
        session_id = session_key(cookie)
        now = int(time.time())
        record = {
            "id": session_id,
            "user": login,
            "client_id": client_id,
            "created_at": now,
            "expires_at": now + ttl,
        }
        await self._put(f"oauth:session:{session_id}", record, ttl)
        await self.redis.sadd(SESSIONS, [session_id])
        await self.redis.sadd(f"oauth:user_sessions:{login}", [session_id])
        await self.redis.expire(f"oauth:user_sessions:{login}", ttl, coredis.PureToken.GT)
        return session_id

    async def session_of(self, cookie: str) -> dict[str, Any] | None:
        return await self._get(f"oauth:session:{session_key(cookie)}")

    async def list_sessions(self, user: str | None = None) -> list[dict[str, Any]]:
        index = f"oauth:user_sessions:{user}" if user else SESSIONS
        out = []
        for session_id in sorted(await self.redis.smembers(index)):
            record = await self._get(f"oauth:session:{session_id}")
            if record is None:
                await self.redis.srem(index, [session_id])
            else:
                out.append(record)
        return sorted(out, key=lambda r: r["created_at"])

    async def delete_session(self, session_id: str) -> bool:
        record = await self._take(f"oauth:session:{session_id}")
        await self.redis.srem(SESSIONS, [session_id])
        if record is None:
            return False
        await self.redis.srem(f"oauth:user_sessions:{record['user']}", [session_id])
        return True

    async def put_device(self, device_code: str, user_code: str, data: dict, ttl: int) -> None:
        await self._put(f"oauth:device:{digest(device_code)}", data, ttl)
        await self.redis.set(f"oauth:device_user:{user_code}", digest(device_code), ex=ttl)

    async def get_device(self, device_code: str) -> dict[str, Any] | None:
        return await self._get(f"oauth:device:{digest(device_code)}")

    async def update_device(self, device_hash: str, data: dict[str, Any]) -> None:
        key = f"oauth:device:{device_hash}"
        ttl = await self.redis.ttl(key)
        if ttl > 0:
            await self._put(key, data, ttl)

    async def device_by_user_code(self, user_code: str) -> tuple[str, dict] | None:
        device_hash = await self.redis.get(f"oauth:device_user:{user_code}")
        if not device_hash:
            return None
        data = await self._get(f"oauth:device:{device_hash}")
        return (device_hash, data) if data else None

    async def delete_device(self, device_code: str) -> None:
        await self.redis.delete([f"oauth:device:{digest(device_code)}"])

    async def set_github_app(self, hostname: str, client_id: str, client_secret: str) -> None:
        await self.redis.hset(
            f"oauth:github_app:{hostname}",
            {"client_id": client_id, "client_secret": client_secret},
        )

    async def github_app(self, hostname: str) -> dict[str, str] | None:
        data = await self.redis.hgetall(f"oauth:github_app:{hostname}")
        return dict(data) if data else None

    async def delete_github_app(self, hostname: str) -> bool:
        return bool(await self.redis.delete([f"oauth:github_app:{hostname}"]))
