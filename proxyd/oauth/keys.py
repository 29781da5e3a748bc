"""Signing keys: proxyd's RS256 key pair, generated once and kept in Redis so that every proxyd
process sharing the Redis signs and verifies with the same keys.

Layout: hash `oauth:signing_keys` (kid -> JSON {kid, pem, public, created_at[, retired_at]}) and
string `oauth:signing_key:current` (the kid new tokens are signed with). `public` is the key's
public JWK, so verifiers never import (or even parse) a private key; entries written before it
existed are converted once per process, in a worker thread, and cached by kid.

Without OAUTH_JWT_PRIVATE_KEY_B64 the current key is generated on first use; old keys stay in the
hash, so tokens they signed keep verifying, and /jwks shows those retired less than a token
lifetime ago. With it set, that key (kid from its RFC 7638 thumbprint) is the current one, and
only it and the kids named in OAUTH_JWT_RETAINED_KIDS are published and accepted: a key generated
before the operator configured one is not.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import time
from collections.abc import Iterable

import coredis
import trio
from joserfc.jwk import KeySet, RSAKey

from proxyd.store import keys

CURRENT = "oauth:signing_key:current"

# kid -> public key; a kid's key never changes, so entries are never stale.
_PUBLIC: dict[str, RSAKey] = {}


def _import(entry: str) -> RSAKey:
    data = json.loads(entry)
    return RSAKey.import_key(data["pem"], parameters={"kid": data["kid"], "alg": "RS256"})


def _public_jwk(key: RSAKey) -> dict:
    return {**key.as_dict(private=False), "kid": key.kid, "alg": "RS256", "use": "sig"}


def _entry(kid: str, key: RSAKey, pem: str) -> str:
    return json.dumps(
        {"kid": kid, "pem": pem, "public": _public_jwk(key), "created_at": int(time.time())}
    )


def _generate(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, private=True, parameters={"kid": kid})


@functools.lru_cache(maxsize=4)
def _configured(private_key_b64: str) -> tuple[str, str, RSAKey]:
    """(kid, pem, private key) of OAUTH_JWT_PRIVATE_KEY_B64, imported once per process."""
    pem = base64.b64decode(private_key_b64).decode()
    probe = RSAKey.import_key(pem)
    kid = f"proxyd-{probe.thumbprint()[:16]}"
    return kid, pem, RSAKey.import_key(pem, parameters={"kid": kid, "alg": "RS256"})


def configured_kid(private_key_b64: str) -> str:
    return _configured(private_key_b64)[0]


async def current_signing_key(redis: coredis.Redis, private_key_b64: str = "") -> RSAKey:
    """The key to sign with, creating it on first use (safe when several processes race)."""
    if private_key_b64:
        kid, pem, key = _configured(private_key_b64)
        await redis.hsetnx(keys.SIGNING_KEYS, kid, _entry(kid, key, pem))
        previous = await redis.get(CURRENT)
        if previous != kid:
            await redis.set(CURRENT, kid)
            await _retire(redis, previous)
        return key
    for _ in range(50):
        kid = await redis.get(CURRENT)
        if kid:
            entry = await redis.hget(keys.SIGNING_KEYS, kid)
            if entry:
                return await trio.to_thread.run_sync(_import, entry)
            await trio.sleep(0.02)  # another process is storing it right now
            continue
        kid = f"proxyd-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
        key = await trio.to_thread.run_sync(_generate, kid)
        if await redis.set(CURRENT, kid, condition=coredis.PureToken.NX):
            pem = key.as_pem(private=True).decode()
            await redis.hset(keys.SIGNING_KEYS, {kid: _entry(kid, key, pem)})
            return key
    raise RuntimeError("could not read or create the signing key in Redis")


async def _retire(redis: coredis.Redis, kid: str | None) -> None:
    """Note when a key stopped signing, so /jwks can drop it once its tokens have expired."""
    entry = await redis.hget(keys.SIGNING_KEYS, kid) if kid else None
    if entry:
        data = json.loads(entry)
        data.setdefault("retired_at", int(time.time()))
        await redis.hset(keys.SIGNING_KEYS, {kid: json.dumps(data)})


def _public_from_pem(entry: str) -> RSAKey:
    key = _import(entry)
    return RSAKey.import_key(_public_jwk(key))


async def _public(kid: str, entry: str) -> RSAKey:
    cached = _PUBLIC.get(kid)
    if cached is not None:
        return cached
    data = json.loads(entry)
    if isinstance(data.get("public"), dict) and "d" not in data["public"]:
        key = RSAKey.import_key({**data["public"], "kid": kid})
    else:  # an entry from before `public` was stored: parse the PEM once, off the event loop
        key = await trio.to_thread.run_sync(_public_from_pem, entry)
    if key.is_private:
        raise ValueError(f"signing key {kid} did not yield a public key")
    _PUBLIC[kid] = key
    return key


def _allowed(private_key_b64: str, retained: Iterable[str]) -> set[str] | None:
    """The kids that may be published and accepted; None: every stored key."""
    if not private_key_b64:
        return None
    return {configured_kid(private_key_b64), *retained}


async def public_keys(
    redis: coredis.Redis,
    *,
    private_key_b64: str = "",
    retained: Iterable[str] = (),
    token_lifetime: int | None = None,
) -> KeySet:
    """Public keys only: every stored key (or, with a configured key, that key and the retained
    kids); with token_lifetime, keys retired longer ago than that are left out (for /jwks)."""
    allowed = _allowed(private_key_b64, retained)
    entries = await redis.hgetall(keys.SIGNING_KEYS)
    cutoff = None if token_lifetime is None else time.time() - token_lifetime - 60
    found = []
    for kid, entry in sorted(entries.items()):
        if allowed is not None and kid not in allowed:
            continue
        retired = json.loads(entry).get("retired_at") if cutoff is not None else None
        if allowed is None and retired is not None and retired <= cutoff:
            continue
        found.append(await _public(kid, entry))
    if allowed is not None:
        kid, _, key = _configured(private_key_b64)
        if not any(k.kid == kid for k in found):  # configured but not stored yet
            found.append(RSAKey.import_key(_public_jwk(key)))
    return KeySet(found)


async def published_keys(
    redis: coredis.Redis,
    token_lifetime: int,
    private_key_b64: str = "",
    retained: Iterable[str] = (),
) -> KeySet:
    """The keys /jwks shows (public parts only)."""
    return await public_keys(
        redis, private_key_b64=private_key_b64, retained=retained, token_lifetime=token_lifetime
    )


async def verification_keys(
    redis: coredis.Redis, private_key_b64: str = "", retained: Iterable[str] = ()
) -> KeySet:
    """The public keys tokens are verified against."""
    return await public_keys(redis, private_key_b64=private_key_b64, retained=retained)
