"""The Certificate record (stored as JSON in cert:{name}) and the cryptography around it: private
keys (RSA or ECDSA P-256), PEM parsing (names, issuer, expiry) and self-signed certificates.

Private keys live only in `Certificate.private_key_pem` and in Redis; `repr()` and `public_dict()`
leave them out, so a certificate can be logged or returned without leaking its key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from proxyd.store.models import ValidationError, now_iso

SCHEMA_VERSION = 1
MAX_DOMAINS = 100
KEY_TYPES = ("rsa", "ecdsa")
CHALLENGES = ("http-01", "tls-alpn-01")

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CERT_INDEX = "index:certs"


def cert_key(name: str) -> str:
    return f"cert:{name}"


def domain_key(domain: str) -> str:
    return f"cert:domain:{domain}"


def status_key(name: str) -> str:
    return f"cert:status:{name}"


def lock_key(name: str) -> str:
    return f"cert:lock:{name}"


@attrs.define(repr=False)
class Certificate:
    """One certificate: the names it covers, how it is obtained, and (once issued) its PEMs."""

    cert_name: str
    domains: list[str]
    email: str | None = None
    acme_directory_url: str | None = None
    staging: bool = False
    key_type: str = "rsa"
    challenge: str = "http-01"
    status: str = "pending"  # pending | active | failed | self-signed
    expires_at: str | None = None
    issued_at: str | None = None
    issuer: str | None = None
    fingerprint: str | None = None
    fullchain_pem: str | None = None
    private_key_pem: str | None = None
    owner_token_hash: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    last_error: str | None = None

    def __repr__(self) -> str:  # never show the private key
        return f"Certificate({self.cert_name!r}, domains={self.domains!r}, status={self.status!r})"

    def validate(self) -> None:
        if not _NAME.match(self.cert_name or ""):
            raise ValidationError(
                f"certificate name {self.cert_name!r} must be 1-63 lower-case letters, digits, "
                "'.', '_' or '-'."
            )
        self.domains = normalize_domains(self.domains)
        if self.email is not None:
            self.email = self.email.strip() or None
        if self.email and not _EMAIL.match(self.email):
            raise ValidationError(f"email {self.email!r} is not an email address.")
        if self.key_type not in KEY_TYPES:
            raise ValidationError(f"keyType must be rsa or ecdsa, not {self.key_type!r}.")
        if self.challenge not in CHALLENGES:
            raise ValidationError(
                f"challenge must be http-01 or tls-alpn-01, not {self.challenge!r}."
            )

    @property
    def expires(self) -> dt.datetime | None:
        return parse_time(self.expires_at)

    def public_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data.pop("private_key_pem")
        return data


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def normalize_domains(domains: list[str] | None) -> list[str]:
    """Lower-case, de-duplicate (keeping order) and check 1-100 DNS names (`*.` allowed first)."""
    seen: list[str] = []
    for raw in domains or []:
        name = (raw or "").strip().lower().rstrip(".")
        labels = name.split(".")
        if labels and labels[0] == "*":
            labels = labels[1:]
        if not name or len(name) > 253 or not labels or not all(_LABEL.match(p) for p in labels):
            raise ValidationError(f"domain {raw!r} is not a valid DNS name.")
        if name not in seen:
            seen.append(name)
    if not seen:
        raise ValidationError("a certificate needs at least one domain.")
    if len(seen) > MAX_DOMAINS:
        raise ValidationError(f"a certificate can have at most {MAX_DOMAINS} domains.")
    return seen


def covers(names: frozenset[str] | set[str] | list[str], host: str) -> bool:
    """True when a certificate for `names` is valid for `host` (exact or one-label wildcard)."""
    if host in names:
        return True
    _, dot, parent = host.partition(".")
    return bool(dot) and f"*.{parent}" in names


def to_json(cert: Certificate) -> str:
    data = attrs.asdict(cert)
    data["schema_version"] = SCHEMA_VERSION
    return json.dumps(data, separators=(",", ":"))


def from_json(raw: str | bytes) -> Certificate:
    data = json.loads(raw)
    names = {f.name for f in attrs.fields(Certificate)}
    return Certificate(**{k: v for k, v in data.items() if k in names})


# -- keys and PEM ----------------------------------------------------------------------------------
def new_private_key(key_type: str, rsa_key_size: int = 2048):
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_key_size)


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@attrs.frozen
class PemInfo:
    names: list[str]
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str


def inspect_pem(fullchain_pem: str) -> PemInfo:
    """Names, issuer, validity and SHA-256 fingerprint of the first certificate in a chain."""
    cert = x509.load_pem_x509_certificates(fullchain_pem.encode())[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [
            str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    return PemInfo(
        names=names,
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )


def self_signed(
    names: list[str],
    common_name: str,
    days: int,
    key=None,
    extensions: list[tuple[x509.ExtensionType, bool]] = (),
) -> tuple[str, str]:
    """A self-signed certificate for names (ECDSA P-256 unless a key is given): (cert, key) PEM."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key).decode()


def now() -> str:
    return now_iso()
