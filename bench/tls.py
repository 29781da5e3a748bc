"""HTTPS benchmark plumbing: a self-signed certificate for nginx's TLS listener, and running wrk
with a private /etc/hosts so it connects to 127.0.0.1 while sending a real hostname as SNI.

wrk takes the TLS server name from the URL's host and has no option to override it; proxyd (like
any SNI-based server) picks the certificate by that name and answers 421 when the Host is not
covered. So the HTTPS rows run wrk inside a new mount namespace (`unshare -m`, root only) where a
bind-mounted hosts file maps the bench hostname to 127.0.0.1. Nothing outside that process sees it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.wrk import LoadResult, parse_wrk, wrk_argv


def self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Write cert.pem and key.pem (ECDSA P-256, 1 day) for hostname; returns their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def https_possible() -> str:
    """'' when HTTPS rows can run here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root (wrk runs in a private mount namespace for its /etc/hosts)"
    if not shutil.which("unshare"):
        return "needs unshare (util-linux)"
    return ""


def run_wrk_resolving(
    url: str,
    hosts_file: Path,
    duration: int,
    connections: int = 10,
    threads: int = 1,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """wrk against url, with hosts_file as /etc/hosts for wrk only."""
    argv = wrk_argv(url, duration, connections, threads, headers or {})
    wrapped = [
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        str(hosts_file),
        *argv,
    ]
    done = subprocess.run(
        wrapped, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return parse_wrk(done.stdout)
