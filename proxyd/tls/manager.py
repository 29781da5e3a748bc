"""CertManager: certificates in Redis (cert:{name}, cert:domain:{domain}, index:certs), the SNI
store kept current, and proxies given certificates automatically. The ACME orders (in worker
threads) and the renewal loop are in proxyd.tls.ordering, mixed in.

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
import logging
from typing import Any

import coredis
import trio

from proxyd.config import Settings
from proxyd.events.bus import Event, EventBus
from proxyd.store.models import ValidationError, normalize_hostname, now_iso
from proxyd.store.repository import Conflict, NotFound, Store
from proxyd.tls import status as order_status
from proxyd.tls.certificate import (
    CERT_INDEX,
    Certificate,
    cert_key,
    covers,
    domain_key,
    from_json,
    to_json,
)
from proxyd.tls.challenges import (
    Http01Responder,
)
from proxyd.tls.ordering import CHALLENGE_EVENT, READY_EVENT, AcmeOrders
from proxyd.tls.sni import CertificateStore

log = logging.getLogger("proxyd.tls")

DELETED_EVENT = "certificate_deleted"


def proxy_cert_name(hostname: str) -> str:
    return "proxy-" + hostname.replace(".", "-").replace("*", "wildcard")[:57]


class CertManager(AcmeOrders):
    def __init__(self, settings: Settings, store: Store, bus: EventBus, proxy_lookup) -> None:
        self.settings = settings
        self.store = store
        self.redis: coredis.Redis = store.redis
        self.bus = bus
        self.proxy_lookup = proxy_lookup
        self.sni = CertificateStore(
            settings.self_signed_cn,
            settings.self_signed_days,
            proxy_lookup=proxy_lookup,
            http2=settings.edge_http2,
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
