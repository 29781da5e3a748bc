"""ACME ordering for CertManager (proxyd.tls.manager): the per-certificate Redis lock, the order
itself in a worker thread with its stages in the status stream, the HTTP-01 / TLS-ALPN-01
challenge answers shared through Redis and events, and the renewal loop.

Only one proxyd process orders a given certificate at a time: it takes cert:lock:{name} (SET NX
with a TTL) and re-reads the record first, so a finished order is not repeated by a process that
comes late.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from typing import Any

import coredis
import trio

from proxyd.store.models import now_iso
from proxyd.tls import status as order_status
from proxyd.tls.acme_client import AcmeError, OrderRequest, run_order
from proxyd.tls.certificate import (
    Certificate,
    inspect_pem,
    iso,
    lock_key,
)
from proxyd.tls.challenges import (
    CHALLENGE_TTL,
    tls_alpn_certificate,
    tls_alpn_key,
    tls_alpn_record,
)

log = logging.getLogger("proxyd.tls")

READY_EVENT = "certificate_ready"
CHALLENGE_EVENT = "acme_challenge"
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def account_key(directory_url: str) -> str:
    return "acme:account:" + hashlib.sha256(directory_url.encode()).hexdigest()[:24]


class AcmeOrders:
    """Ordering and renewal, mixed into CertManager (which provides settings, store, sni, http01,
    the order limiter and the record helpers `_save`, `get`, `list`)."""

    async def _lock(self, name: str, ttl: int) -> str | None:
        token = f"{self.settings.instance}:{secrets.token_hex(8)}"
        ok = await self.redis.set(lock_key(name), token, condition=coredis.PureToken.NX, ex=ttl)
        return token if ok else None

    async def _unlock(self, name: str, token: str) -> None:
        with trio.CancelScope(shield=True):
            await self.redis.eval(_RELEASE, keys=[lock_key(name)], args=[token])

    def _order_ttl(self) -> int:
        s = self.settings
        return int(
            120
            + s.acme_poll_initial_wait
            + 3 * s.acme_poll_max_attempts * s.acme_poll_interval_seconds
        )

    async def order(self, name: str, force: bool) -> bool:
        """Order (or renew) certificate name unless another process is doing it; True on success.

        force=False orders only if the certificate has no usable PEM yet (or is due for renewal).
        """
        if name in self.running:
            return False
        self.running.add(name)
        try:
            async with self.limiter:
                token = await self._lock(name, self._order_ttl())
                if token is None:
                    log.info("certificate %s is being ordered by another process", name)
                    return False
                try:
                    cert = await self.get(name)
                    if cert is None:
                        return False
                    if not force and cert.fullchain_pem and not self.due(cert):
                        return False
                    return await self._order_locked(cert)
                finally:
                    await self._unlock(name, token)
        finally:
            self.running.discard(name)

    def due(self, cert: Certificate) -> bool:
        expires = cert.expires
        if expires is None:
            return True
        left = expires.timestamp() - time.time()
        return left < self.settings.renewal_threshold_days * 86400

    async def _order_locked(self, cert: Certificate) -> bool:
        name = cert.cert_name
        settings = self.settings
        directory = cert.acme_directory_url or settings.acme_directory_url
        stored_account = await self.redis.get(account_key(directory))
        request = OrderRequest(
            domains=cert.domains,
            directory_url=directory,
            email=cert.email,
            key_type=cert.key_type,
            rsa_key_size=settings.rsa_key_size,
            challenge=cert.challenge,
            ca_bundle=settings.acme_ca_bundle or None,
            poll_max_attempts=settings.acme_poll_max_attempts,
            poll_interval=settings.acme_poll_interval_seconds,
            poll_initial_wait=settings.acme_poll_initial_wait,
            account_key_json=json.loads(stored_account)["key"] if stored_account else None,
        )

        async def stage(stage: str, message: str) -> None:
            await self._status(cert, stage, message)

        def stage_sync(stage_name: str, message: str) -> None:
            trio.from_thread.run(stage, stage_name, message)

        def provide_sync(kind: str, domain: str, token: str, key_authorization: str) -> None:
            trio.from_thread.run(self._provide, kind, domain, token, key_authorization)

        def withdraw_sync(kind: str, domain: str, token: str) -> None:
            trio.from_thread.run(self._withdraw, kind, domain, token)

        log.info(
            "ordering certificate %s for %s from %s (%s, %s)",
            name,
            ", ".join(cert.domains),
            directory,
            cert.challenge,
            cert.key_type,
        )
        started = time.monotonic()
        try:
            result = await trio.to_thread.run_sync(
                run_order, request, stage_sync, provide_sync, withdraw_sync
            )
        except AcmeError as exc:
            await self._failed(cert, str(exc))
            return False
        if not stored_account:
            await self.redis.set(
                account_key(directory),
                json.dumps({"key": result.account_key_json, "uri": result.account_uri}),
                condition=coredis.PureToken.NX,
            )
        info = inspect_pem(result.fullchain_pem)
        current = await self.get(name)
        if current is None:  # deleted while ordering
            return False
        current.fullchain_pem = result.fullchain_pem
        current.private_key_pem = result.private_key_pem
        current.status = "active"
        current.expires_at = iso(info.not_after)
        current.issued_at = now_iso()
        current.issuer = info.issuer
        current.fingerprint = info.fingerprint
        current.last_error = None
        await self._save(current)
        self._serve(current)
        self.failures.pop(name, None)
        self.retry_at.pop(name, None)
        elapsed = time.monotonic() - started
        await self._status(current, "ready", f"issued by {info.issuer} in {elapsed:.1f}s")
        await self.store.publish_event(
            READY_EVENT, current.domains[0], cert_name=name, domains=current.domains
        )
        log.info(
            "certificate %s issued in %.1fs (expires %s, sha256 %s)",
            name,
            elapsed,
            current.expires_at,
            info.fingerprint[:16],
        )
        return True

    async def _failed(self, cert: Certificate, reason: str) -> None:
        name = cert.cert_name
        count = self.failures.get(name, 0) + 1
        self.failures[name] = count
        self.retry_at[name] = time.monotonic() + min(3600.0, 60.0 * 2 ** (count - 1))
        log.warning("certificate %s failed (attempt %d): %s", name, count, reason)
        current = await self.get(name)
        if current is not None:
            current.last_error = reason
            if not current.fullchain_pem:
                current.status = "failed"
            await self._save(current)
        await self._status(cert, "failed", "the order failed", reason=reason)

    async def _status(self, cert: Certificate, stage: str, message: str, **kw: Any) -> None:
        await order_status.set_status(
            self.store,
            cert.cert_name,
            stage,
            message,
            domains=cert.domains,
            instance=self.settings.instance,
            retention=self.settings.cert_status_retention_seconds,
            **kw,
        )

    # -- challenge answers -------------------------------------------------------------------------
    async def _provide(self, kind: str, domain: str, token: str, key_authorization: str) -> None:
        if kind == "http-01":
            await self.http01.provide(token, key_authorization)
            return
        cert_pem, key_pem = tls_alpn_certificate(domain, key_authorization)
        self.sni.set_alpn_challenge(domain, cert_pem, key_pem)
        await self.redis.set(
            tls_alpn_key(domain), tls_alpn_record(cert_pem, key_pem), ex=CHALLENGE_TTL
        )
        await self.store.publish_event(CHALLENGE_EVENT, domain, domain=domain, action="set")

    async def _withdraw(self, kind: str, domain: str, token: str) -> None:
        if kind == "http-01":
            await self.http01.withdraw(token)
            return
        self.sni.clear_alpn_challenge(domain)
        await self.redis.delete([tls_alpn_key(domain)])
        await self.store.publish_event(CHALLENGE_EVENT, domain, domain=domain, action="clear")

    async def _load_challenge(self, data: dict) -> None:
        domain = data.get("domain") or ""
        raw = await self.redis.get(tls_alpn_key(domain)) if data.get("action") == "set" else None
        if raw:
            record = json.loads(raw)
            self.sni.set_alpn_challenge(domain, record["cert"], record["key"])
        else:
            self.sni.clear_alpn_challenge(domain)

    # -- renewal -----------------------------------------------------------------------------------
    async def renew_forever(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_check = 0.0
        while True:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.settings.renewal_check_interval
                await self.renew_due()
            else:
                await self.retry_failed()
            wake = min([next_check, *self.retry_at.values()])
            await trio.sleep(min(30.0, max(0.5, wake - time.monotonic())))

    async def renew_due(self) -> None:
        for cert in await self.list():
            if cert.fullchain_pem and self.due(cert) and cert.cert_name not in self.retry_at:
                log.info("certificate %s expires %s: renewing", cert.cert_name, cert.expires_at)
                self.spawn(self.order, cert.cert_name, False)

    async def retry_failed(self) -> None:
        now = time.monotonic()
        for name, when in list(self.retry_at.items()):
            if when <= now:
                del self.retry_at[name]
                cert = await self.get(name)
                if cert is not None and (not cert.fullchain_pem or self.due(cert)):
                    log.info("retrying certificate %s", name)
                    self.spawn(self.order, name, False)
