"""Settings of the TLS capability: the self-signed fallback, ACME and renewal."""

from __future__ import annotations

import attrs

import proxyd.config.parsers as p


@attrs.frozen(slots=False)
class TlsSettings:
    """Certificates, ACME orders and renewal (proxyd.tls)."""

    self_signed_cn: str = p.setting(
        "SELF_SIGNED_CN",
        "localhost",
        p.text,
        "Common name of the self-signed certificate served when no certificate covers a name.",
    )
    self_signed_days: int = p.setting(
        "SELF_SIGNED_DAYS", "365", p.positive_int, "Validity in days of self-signed certificates."
    )
    acme_directory_url: str = p.setting(
        "ACME_DIRECTORY_URL",
        "https://acme-v02.api.letsencrypt.org/directory",
        p.directory_url,
        "ACME directory for certificates (Let's Encrypt production, or any ACME CA).",
    )
    acme_staging_url: str = p.setting(
        "ACME_STAGING_URL",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
        p.directory_url,
        "ACME directory used for certificates requested with staging=true.",
    )
    acme_ca_bundle: str = p.setting(
        "ACME_CA_BUNDLE",
        "",
        p.text,
        "PEM file of CA certificates to trust for the ACME directory's HTTPS (Pebble, private "
        "CAs). Empty: the system's trust store.",
    )
    rsa_key_size: int = p.setting(
        "RSA_KEY_SIZE",
        "2048",
        p.rsa_key_size,
        "RSA key size for new certificates (2048, 3072, 4096).",
    )
    cert_key_type: str = p.setting(
        "CERT_KEY_TYPE",
        "rsa",
        p.key_type,
        "Key type of new certificates when a request does not say: rsa or ecdsa (P-256).",
    )
    acme_challenge: str = p.setting(
        "ACME_CHALLENGE",
        "http-01",
        p.challenge,
        "ACME challenge used when a request does not say: http-01 (port 80) or tls-alpn-01 "
        "(port 443).",
    )
    acme_poll_max_attempts: int = p.setting(
        "ACME_POLL_MAX_ATTEMPTS",
        "60",
        p.positive_int,
        "How many times an order's authorizations and finalization are polled before giving up.",
    )
    acme_poll_interval_seconds: float = p.setting(
        "ACME_POLL_INTERVAL_SECONDS", "2", p.positive_float, "Seconds between ACME polls."
    )
    acme_poll_initial_wait: float = p.setting(
        "ACME_POLL_INITIAL_WAIT",
        "0",
        p.non_negative_float,
        "Seconds to wait after answering challenges before the first poll.",
    )
    cert_gen_max_workers: int = p.setting(
        "CERT_GEN_MAX_WORKERS",
        "5",
        p.positive_int,
        "Certificate orders run at the same time in one proxyd process (worker threads).",
    )
    cert_status_retention_seconds: int = p.setting(
        "CERT_STATUS_RETENTION_SECONDS",
        "300",
        p.positive_int,
        "Seconds the status of a finished order (ready or failed) is kept in cert:status:{name}.",
    )
    renewal_check_interval: float = p.setting(
        "RENEWAL_CHECK_INTERVAL",
        "86400",
        p.positive_float,
        "Seconds between checks for certificates that need renewing.",
    )
    renewal_threshold_days: float = p.setting(
        "RENEWAL_THRESHOLD_DAYS",
        "30",
        p.positive_float,
        "Renew certificates that expire within this many days.",
    )
    admin_email: str = p.setting(
        "ADMIN_EMAIL",
        "",
        p.text,
        "Contact email for ACME accounts when a request gives none (may be empty).",
    )
