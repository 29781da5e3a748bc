"""A real Pebble ACME server and pebble-challtestsrv (Debian package `pebble`) for the TLS tests.

Everything is made at run time: a throw-away CA and a certificate for Pebble's HTTPS listener
(nothing is committed), Pebble's config with the HTTP-01/TLS-ALPN-01 ports the proxyd under test
listens on, and pebble-challtestsrv as Pebble's DNS server, answering every name with 127.0.0.1
(no AAAA answers, so validation goes to proxyd's IPv4 listeners).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import free_port


def _write_listener_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for localhost/127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxyd test CA for Pebble")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths[2].chmod(0o600)
    return paths


def _binary(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise RuntimeError(f"{name} is not installed (apt-get install pebble)")
    return found


class Pebble:
    """Pebble + pebble-challtestsrv; validation goes to 127.0.0.1:http_port / :tls_port."""

    def __init__(self, workdir: Path, http_port: int, tls_port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.http_port = http_port
        self.tls_port = tls_port
        self.ca_bundle, cert, key = _write_listener_certs(workdir)
        self.port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port()
        self.challtestsrv_port = free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        config_path = workdir / "pebble-config.json"
        config_path.write_text(json.dumps(config))
        self.log_path = workdir / "pebble.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the processes' lifetime
        self._log = log
        self.challtestsrv = subprocess.Popen(
            [
                _binary("pebble-challtestsrv"),
                "-dns01",
                f"127.0.0.1:{self.dns_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                f"127.0.0.1:{self.challtestsrv_port}",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pebble = subprocess.Popen(
            [
                _binary("pebble"),
                "-config",
                str(config_path),
                "-dnsserver",
                f"127.0.0.1:{self.dns_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                "PATH": "/usr/bin:/bin",
                "PEBBLE_VA_NOSLEEP": "1",
                "PEBBLE_WFE_NONCEREJECT": "0",
                "PEBBLE_AUTHZREUSE": "0",
            },
        )
        self._wait()
        self.root_pem = self._get(f"https://127.0.0.1:{self.management_port}/roots/0").text

    def _get(self, url: str) -> httpx.Response:
        response = httpx.get(
            url, verify=ssl.create_default_context(cafile=self.ca_bundle), timeout=5
        )
        response.raise_for_status()
        return response

    def _wait(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in (self.pebble, self.challtestsrv):
                if proc.poll() is not None:
                    raise RuntimeError(f"pebble exited:\n{self.log()}")
            try:
                self._get(self.directory_url)
                httpx.post(
                    f"http://127.0.0.1:{self.challtestsrv_port}/clear-request-history",
                    json={"host": "x", "type": "http"},
                    timeout=2,
                )
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"pebble did not start:\n{self.log()}")

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def resolve(self, host: str, address: str) -> None:
        """Make Pebble's DNS answer host with address (A record)."""
        httpx.post(
            f"http://127.0.0.1:{self.challtestsrv_port}/add-a",
            json={"host": host.rstrip(".") + ".", "addresses": [address]},
            timeout=5,
        ).raise_for_status()

    def env(self) -> dict[str, str]:
        """Settings that point a proxyd at this Pebble (its HTTP/HTTPS ports are the caller's)."""
        return {
            "ACME_DIRECTORY_URL": self.directory_url,
            "ACME_STAGING_URL": self.directory_url,
            "ACME_CA_BUNDLE": str(self.ca_bundle),
            "ACME_POLL_INTERVAL_SECONDS": "0.2",
            "ACME_POLL_MAX_ATTEMPTS": "100",
            "ADMIN_EMAIL": "admin@example.com",
            "SERVER_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.http_port),
            "HTTPS_PORT": str(self.tls_port),
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        for proc in (self.pebble, self.challtestsrv):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._log.close()
