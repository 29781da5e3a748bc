"""Signing keys: proxyd's RS256 key pair, generated once and kept in Redis so that every proxyd
process sharing the Redis signs and verifies with the same keys.

Layout: hash `oauth:signing_keys` (kid -> JSON {kid, pem, created_at}) and string
`oauth:signing_key:current` (the kid new tokens are signed with). Old keys stay in the hash so
tokens they signed keep verifying until they expire.

With OAUTH_JWT_PRIVATE_KEY_B64 set, that key (kid from its RFC 7638 thumbprint) is the current one;
it is stored in the hash too so that every verifier finds it, and earlier keys keep verifying.
"""

from __future__ import annotations

import base64
import json
import secrets
import time

import coredis
import trio
from joserfc.jwk import KeySet, RSAKey

from proxyd.store import keys

CURRENT = "oauth:signing_key:current"


def _import(entry: str) -> RSAKey:
    data = json.loads(entry)
    return RSAKey.import_key(data["pem"], parameters={"kid": data["kid"], "alg": "RS256"})


def _generate(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, private=True, parameters={"kid": kid})


def _configured(private_key_b64: str) -> tuple[str, str]:
    pem = base64.b64decode(private_key_b64).decode()
    key = RSAKey.import_key(pem)
    return f"proxyd-{key.thumbprint()[:16]}", pem


async def current_signing_key(redis: coredis.Redis, private_key_b64: str = "") -> RSAKey:
    """The key to sign with, creating it on first use (safe when several processes race)."""
    if private_key_b64:
        kid, pem = _configured(private_key_b64)
        entry = json.dumps({"kid": kid, "pem": pem, "created_at": int(time.time())})
        await redis.hsetnx(keys.SIGNING_KEYS, kid, entry)
        previous = await redis.get(CURRENT)
        if previous != kid:
            await redis.set(CURRENT, kid)
            await _retire(redis, previous)
        return _import(entry)
    for _ in range(50):
        kid = await redis.get(CURRENT)
        if kid:
            entry = await redis.hget(keys.SIGNING_KEYS, kid)
            if entry:
                return _import(entry)
            await trio.sleep(0.02)  # another process is storing it right now
            continue
        kid = f"proxyd-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
        key = await trio.to_thread.run_sync(_generate, kid)
        if await redis.set(CURRENT, kid, condition=coredis.PureToken.NX):
            pem = key.as_pem(private=True).decode()
            created = int(time.time())
            await redis.hset(
                keys.SIGNING_KEYS,
                {kid: json.dumps({"kid": kid, "pem": pem, "created_at": created})},
            )
            return _import(json.dumps({"kid": kid, "pem": pem}))
    raise RuntimeError("could not read or create the signing key in Redis")


async def _retire(redis: coredis.Redis, kid: str | None) -> None:
    """Note when a key stopped signing, so /jwks can drop it once its tokens have expired."""
    entry = await redis.hget(keys.SIGNING_KEYS, kid) if kid else None
    if entry:
        data = json.loads(entry)
        data.setdefault("retired_at", int(time.time()))
        await redis.hset(keys.SIGNING_KEYS, {kid: json.dumps(data)})


async def published_keys(redis: coredis.Redis, token_lifetime: int) -> KeySet:
    """The keys /jwks shows: current ones and those retired less than a token lifetime ago."""
    cutoff = time.time() - token_lifetime - 60
    entries = await redis.hgetall(keys.SIGNING_KEYS)
    kept = [e for e in entries.values() if json.loads(e).get("retired_at", cutoff + 1) > cutoff]
    return KeySet([_import(entry) for entry in kept])


async def verification_keys(redis: coredis.Redis) -> KeySet:
    """Every stored key (current and retired), for verifying signatures."""
    entries = await redis.hgetall(keys.SIGNING_KEYS)
    return KeySet([_import(entry) for entry in entries.values()])
