"""CertManager: certificates in Redis (cert:{name}, cert:domain:{domain}, index:certs), ACME orders
in worker threads, the SNI store kept current, proxies given certificates automatically, and the
renewal loop.

- Orders run at most CERT_GEN_MAX_WORKERS at a time per process, each in a thread (the `acme`
  library is synchronous). Before ordering, a process takes cert:lock:{name} (SET NX with a TTL)
  and re-reads the record, so among several proxyd processes sharing Redis only one orders a
  given certificate, and a finished order is not repeated by a process that comes late.
- Every process reacts to the workflow events through the in-process EventBus:
  certificate_ready / certificate_deleted reload that certificate into the SNI store;
  acme_challenge loads or drops a TLS-ALPN-01 answer; proxy_created / proxy_updated give a proxy
  with HTTPS a certificate ("smart certificate handling": reuse one that covers the name, else
  order proxy-{hostname}). A periodic full reload repairs anything missed.
- The renewal loop checks every RENEWAL_CHECK_INTERVAL and renews what expires within
  RENEWAL_THRESHOLD_DAYS; a failed renewal is retried with a growing delay (1 min .. 1 h) and is
  visible in the status, in the record's last_error and in the log.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import time
from typing import Any

import coredis
import trio

from proxyd.config import Settings
from proxyd.events.bus import Event, EventBus
from proxyd.store.models import ValidationError, normalize_hostname, now_iso
from proxyd.store.repository import Conflict, NotFound, Store
from proxyd.tls import status as order_status
from proxyd.tls.acme_client import AcmeError, OrderRequest, run_order
from proxyd.tls.certificate import (
    CERT_INDEX,
    Certificate,
    cert_key,
    covers,
    domain_key,
    from_json,
    inspect_pem,
    iso,
    lock_key,
    to_json,
)
from proxyd.tls.challenges import (
    CHALLENGE_TTL,
    Http01Responder,
    tls_alpn_certificate,
    tls_alpn_key,
    tls_alpn_record,
)
from proxyd.tls.sni import CertificateStore

log = logging.getLogger("proxyd.tls")

READY_EVENT = "certificate_ready"
DELETED_EVENT = "certificate_deleted"
CHALLENGE_EVENT = "acme_challenge"
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def account_key(directory_url: str) -> str:
    return "acme:account:" + hashlib.sha256(directory_url.encode()).hexdigest()[:24]


def proxy_cert_name(hostname: str) -> str:
    return "proxy-" + hostname.replace(".", "-").replace("*", "wildcard")[:57]


class CertManager:
    def __init__(self, settings: Settings, store: Store, bus: EventBus, proxy_lookup) -> None:
        self.settings = settings
        self.store = store
        self.redis: coredis.Redis = store.redis
        self.bus = bus
        self.proxy_lookup = proxy_lookup
        self.sni = CertificateStore(
            settings.self_signed_cn, settings.self_signed_days, proxy_lookup=proxy_lookup
        )
        self.http01 = Http01Responder(self.redis)
        self.limiter = trio.CapacityLimiter(settings.cert_gen_max_workers)
        self.running: set[str] = set()
        self.retry_at: dict[str, float] = {}
        self.failures: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load every certificate, then follow events until cancelled (orders run in here)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self.reload()
            task_status.started()
            nursery.start_soon(self._reload_forever)
            while True:
                with self.bus.listen() as events:
                    async for event in events:
                        await self._on_event(event)
                # The bus dropped us (we fell behind): catch up from Redis and listen again.
                await self.reload()

    async def _reload_forever(self) -> None:
        while True:
            await trio.sleep(self.settings.reconcile_interval)
            try:
                await self.reload()
            except (OSError, coredis.exceptions.RedisError):
                log.exception("reloading certificates from Redis failed; will retry")

    async def reload(self) -> None:
        certs = await self.list()
        wanted = {c.cert_name for c in certs}
        for name in list(self.sni.certs):
            if name not in wanted:
                self.sni.remove(name)
        for cert in certs:
            self._serve(cert)

    def _serve(self, cert: Certificate) -> None:
        try:
            self.sni.put(cert)
        except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError
            log.error("certificate %s cannot be served: %s", cert.cert_name, exc)

    async def _on_event(self, event: Event) -> None:
        kind = event.event_type
        try:
            if kind in (READY_EVENT, DELETED_EVENT):
                name = event.data.get("cert_name")
                cert = await self.get(name) if name else None
                if cert is None:
                    self.sni.remove(name or "")
                else:
                    self._serve(cert)
            elif kind == CHALLENGE_EVENT:
                await self._load_challenge(event.data)
            elif (
                kind in ("proxy_created", "proxy_updated")
                and event.hostname
                and event.data.get("enable_https", True)
            ):
                self.spawn(self.ensure_for_proxy, event.hostname)
        except (OSError, coredis.exceptions.RedisError, ValueError):
            log.exception("handling %s for certificates failed", kind)

    def spawn(self, fn, *args: Any) -> None:
        assert self._nursery is not None, "CertManager.run() must be started first"
        self._nursery.start_soon(functools.partial(self._guard, fn, *args))

    async def _guard(self, fn, *args: Any) -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("certificate task %s%r failed", fn.__name__, args)

    # -- records -------------------------------------------------------------------------------
    async def get(self, name: str) -> Certificate | None:
        raw = await self.redis.get(cert_key(name))
        return from_json(raw) if raw else None

    async def list(self) -> list[Certificate]:
        names = sorted(await self.redis.smembers(CERT_INDEX))
        if not names:
            return []
        raws = await self.redis.mget([cert_key(n) for n in names])
        return [from_json(raw) for raw in raws if raw]

    async def find_covering(self, hostname: str) -> Certificate | None:
        candidates = [hostname]
        _, dot, parent = hostname.partition(".")
        if dot:
            candidates.append(f"*.{parent}")
        for domain in candidates:
            name = await self.redis.get(domain_key(domain))
            if name:
                cert = await self.get(name)
                if cert is not None and covers(cert.domains, hostname):
                    return cert
        return None

    async def _save(self, cert: Certificate) -> None:
        cert.updated_at = now_iso()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(cert_key(cert.cert_name), to_json(cert))
            pipe.sadd(CERT_INDEX, [cert.cert_name])
            for domain in cert.domains:
                pipe.set(domain_key(domain), cert.cert_name)

    async def create(
        self,
        name: str,
        domains: list[str],
        *,
        email: str | None = None,
        staging: bool = False,
        directory_url: str | None = None,
        key_type: str | None = None,
        challenge: str | None = None,
        actor: str | None = None,
    ) -> Certificate:
        """Store a new certificate record and start its order in the background."""
        cert = Certificate(
            cert_name=(name or "").strip().lower(),
            domains=domains,
            email=email if email is not None else (self.settings.admin_email or None),
            staging=staging,
            acme_directory_url=(directory_url or "").strip() or None,
            key_type=(key_type or self.settings.cert_key_type).lower(),
            challenge=(challenge or self.settings.acme_challenge).lower(),
            created_by=actor,
            created_at=now_iso(),
        )
        cert.validate()
        if cert.acme_directory_url and not cert.acme_directory_url.startswith(
            ("https://", "http://")
        ):
            raise ValidationError("directoryUrl must be an https:// URL of an ACME directory.")
        if cert.acme_directory_url is None:
            cert.acme_directory_url = (
                self.settings.acme_staging_url if staging else self.settings.acme_directory_url
            )
        cert.updated_at = cert.created_at
        created = await self.redis.set(
            cert_key(cert.cert_name), to_json(cert), condition=coredis.PureToken.NX
        )
        if not created:
            raise Conflict(f"a certificate named {cert.cert_name} already exists.")
        await self._save(cert)
        await order_status.set_status(
            self.store,
            cert.cert_name,
            "queued",
            "waiting for a free order slot",
            domains=cert.domains,
            instance=self.settings.instance,
            retention=self.settings.cert_status_retention_seconds,
        )
        self.spawn(self.order, cert.cert_name, False)
        return cert

    async def renew(self, name: str) -> Certificate:
        cert = await self.get(name)
        if cert is None:
            raise NotFound(f"no certificate named {name}.")
        if name in self.running:
            raise Conflict(f"an order for {name} is already running.")
        await self._status(cert, "queued", "renewal requested")
        self.spawn(self.order, name, True)
        return cert

    async def delete(self, name: str, force: bool = False) -> None:
        cert = await self.get(name)
        if cert is None:
            raise NotFound(f"no certificate named {name}.")
        users = [p.hostname for p in await self.store.list_proxies() if p.cert_name == name]
        if users and not force:
            raise Conflict(
                f"certificate {name} is attached to {', '.join(users)}; detach it first or "
                "delete with force."
            )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete([cert_key(name)])
            pipe.srem(CERT_INDEX, [name])
        for domain in cert.domains:
            if await self.redis.get(domain_key(domain)) == name:
                await self.redis.delete([domain_key(domain)])
        self.sni.remove(name)
        await self.store.publish_event(DELETED_EVENT, cert.domains[0], cert_name=name)
        for hostname in users:  # after the records are gone, so nothing re-attaches them
            await self.store.update_proxy(hostname, {"cert_name": None})
        log.info("certificate %s deleted", name)

    async def attach(self, hostname: str, cert_name: str | None):
        hostname = normalize_hostname(hostname)
        if cert_name is not None:
            cert = await self.get(cert_name)
            if cert is None:
                raise NotFound(f"no certificate named {cert_name}.")
            if not covers(cert.domains, hostname):
                raise ValidationError(
                    f"certificate {cert_name} does not cover {hostname} "
                    f"(it covers {', '.join(cert.domains)})."
                )
        return await self.store.update_proxy(hostname, {"cert_name": cert_name})

    # -- proxies get certificates on their own ---------------------------------------------------
    async def ensure_for_proxy(self, hostname: str) -> None:
        """Give a proxy with HTTPS a certificate: the one it names, one that covers it, or a new
        one (proxy-{hostname}). One process does this per proxy (a short Redis lock)."""
        proxy = await self.store.get_proxy(hostname)
        if proxy is None or not proxy.enable_https or "." not in hostname:
            return
        if proxy.cert_name and await self.get(proxy.cert_name) is not None:
            return
        token = await self._lock(f"proxy:{hostname}", 60)
        if token is None:
            return
        try:
            if proxy.cert_name:
                name = proxy.cert_name
            else:
                existing = await self.find_covering(hostname)
                if existing is not None:
                    log.info("proxy %s uses certificate %s", hostname, existing.cert_name)
                    await self.store.update_proxy(hostname, {"cert_name": existing.cert_name})
                    return
                name = proxy_cert_name(hostname)
            try:
                await self.create(name, [hostname], email=proxy.cert_email, actor="proxyd")
                log.info("proxy %s: ordering certificate %s", hostname, name)
            except Conflict:
                pass
            if proxy.cert_name != name:
                await self.store.update_proxy(hostname, {"cert_name": name})
        finally:
            await self._unlock(f"proxy:{hostname}", token)

    # -- orders ------------------------------------------------------------------------------------
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
