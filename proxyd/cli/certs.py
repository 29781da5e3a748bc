"""`proxyd cert list|show|create|renew|delete|attach|detach`: certificates over GraphQL.

`create` and `renew` follow the order and print each stage (queued, ordering, validating,
finalizing, ready or failed) as it happens, unless --no-wait; a failed order exits 1 with the
CA's reason.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from proxyd.cli.errors import CliError
from proxyd.cli.options import call
from proxyd.cli.output import print_fields, print_json, print_table, report

CERT_FIELDS = """
    certName domains email acmeDirectoryUrl staging keyType challenge status expiresAt issuedAt
    issuer fingerprint createdBy createdAt updatedAt lastError proxies
    orderStatus { stage message reason instance updatedAt }
"""
LIST = "query { certificates { certName domains status expiresAt issuer proxies } }"
SHOW = f"query($name: String!) {{ certificate(name: $name) {{ {CERT_FIELDS} }} }}"
SHOW_PEM = "query($name: String!) { certificate(name: $name) { fullchainPem } }"
SHOW_KEY = "query($name: String!) { certificate(name: $name) { privateKeyPem } }"
STATUS = """
query($name: String!) {
  certificate(name: $name) { status expiresAt issuer orderStatus { stage message reason } }
}
"""
CREATE = f"""
mutation($input: CreateCertificateInput!) {{ createCertificate(input: $input) {{ {CERT_FIELDS} }} }}
"""
RENEW = f"mutation($name: String!) {{ renewCertificate(name: $name) {{ {CERT_FIELDS} }} }}"
DELETE = (
    "mutation($name: String!, $force: Boolean) { deleteCertificate(name: $name, force: $force) }"
)
ATTACH = """
mutation($hostname: String!, $certName: String!) {
  attachCertificate(hostname: $hostname, certName: $certName) { hostname certName }
}
"""
DETACH = "mutation($hostname: String!) { detachCertificate(hostname: $hostname) { hostname } }"


def _list(args: argparse.Namespace) -> int:
    data = call(args, LIST)
    if args.json:
        print_json(data)
        return 0
    rows = [
        (c["certName"], c["domains"], c["status"], c["expiresAt"], c["issuer"], c["proxies"])
        for c in data["certificates"]
    ]
    print_table(
        ("NAME", "DOMAINS", "STATUS", "EXPIRES", "ISSUER", "PROXIES"), rows, "no certificates"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    document = SHOW_KEY if args.key else SHOW_PEM if args.pem else SHOW
    data = call(args, document, {"name": args.name})
    cert = data.get("certificate")
    if cert is None:
        raise CliError(f"no certificate named {args.name} (NOT_FOUND).")
    if args.json:
        print_json(data)
    elif args.key or args.pem:
        sys.stdout.write(cert.get("privateKeyPem") or cert.get("fullchainPem") or "")
        if not (cert.get("privateKeyPem") or cert.get("fullchainPem")):
            raise CliError(f"certificate {args.name} has not been issued yet.")
    else:
        record = dict(cert)
        status = record.pop("orderStatus") or {}
        record["order"] = " ".join(filter(None, [status.get("stage"), status.get("message")]))
        if status.get("reason"):
            record["order"] += f" ({status['reason']})"
        print_fields(record)
    return 0


def follow(args: argparse.Namespace, name: str, timeout: float) -> dict[str, Any]:
    """Print each order stage until ready or failed; returns the last certificate data."""
    deadline = time.monotonic() + timeout
    shown = None
    while True:
        cert = call(args, STATUS, {"name": name}).get("certificate")
        if cert is None:
            raise CliError(f"certificate {name} was deleted.")
        status = cert.get("orderStatus") or {}
        stage = status.get("stage")
        line = f"{stage}: {status.get('message') or ''}".rstrip(": ") if stage else None
        if line and line != shown and not args.json:
            print(f"{name}: {line}", file=sys.stderr, flush=True)
            shown = line
        if stage == "failed":
            raise CliError(f"certificate {name} failed: {status.get('reason') or 'no reason'}")
        if stage == "ready":
            return cert
        if time.monotonic() > deadline:
            raise CliError(
                f"certificate {name} is still at {stage or 'queued'} after {timeout:g} s; "
                f"check later with `proxyd cert show {name}`."
            )
        time.sleep(0.3)


def _create(args: argparse.Namespace) -> int:
    fields = {
        "name": args.name,
        "domains": [d for part in args.domains for d in part.split(",") if d],
        "email": args.email,
        "staging": args.staging or None,
        "directoryUrl": args.directory_url,
        "keyType": args.key_type,
        "challenge": args.challenge,
    }
    data = call(args, CREATE, {"input": {k: v for k, v in fields.items() if v is not None}})
    cert = data["createCertificate"]
    if not args.wait:
        report(
            args, data, f"ordering certificate {cert['certName']} for {', '.join(cert['domains'])}"
        )
        return 0
    final = follow(args, cert["certName"], args.timeout)
    report(
        args,
        {"certificate": final},
        f"certificate {cert['certName']} is ready (expires {final['expiresAt']})",
    )
    return 0


def _renew(args: argparse.Namespace) -> int:
    data = call(args, RENEW, {"name": args.name})
    if not args.wait:
        report(args, data, f"renewing certificate {args.name}")
        return 0
    final = follow(args, args.name, args.timeout)
    report(
        args,
        {"certificate": final},
        f"certificate {args.name} renewed (expires {final['expiresAt']})",
    )
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not args.yes and sys.stdin.isatty():
        try:
            answer = input(f"Delete certificate {args.name}? [y/N] ").strip().lower()
        except EOFError:
            answer = ""
        if answer not in ("y", "yes"):
            raise CliError("not deleted.")
    data = call(args, DELETE, {"name": args.name, "force": args.force})
    report(args, data, f"deleted certificate {args.name}")
    return 0


def _attach(args: argparse.Namespace) -> int:
    data = call(args, ATTACH, {"hostname": args.hostname, "certName": args.name})
    report(args, data, f"{args.hostname} now serves certificate {args.name}")
    return 0


def _detach(args: argparse.Namespace) -> int:
    data = call(args, DETACH, {"hostname": args.hostname})
    report(args, data, f"{args.hostname} no longer names a certificate")
    return 0


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="return at once instead of showing the order's progress",
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds to follow the order (default 300)"
    )


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    """Add the `cert` command group to the top-level subcommands."""
    group = sub.add_parser("cert", help="certificates: HTTPS for proxies (ACME)")
    actions = group.add_subparsers(dest="cert_command", required=True, metavar="ACTION")

    actions.add_parser("list", parents=[api], help="list certificates").set_defaults(func=_list)

    show = actions.add_parser("show", parents=[api], help="show one certificate")
    show.add_argument("name", metavar="NAME")
    which = show.add_mutually_exclusive_group()
    which.add_argument("--pem", action="store_true", help="print the certificate chain (PEM)")
    which.add_argument(
        "--key", action="store_true", help="print the private key (PEM; needs an admin token)"
    )
    show.set_defaults(func=_show)

    create = actions.add_parser(
        "create", parents=[api], help="order a certificate and show its progress"
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "domains", metavar="DOMAIN", nargs="+", help="names to cover (1-100; commas allowed)"
    )
    create.add_argument("--email", help="ACME account contact (default: ADMIN_EMAIL)")
    create.add_argument(
        "--staging", action="store_true", help="use the staging directory (ACME_STAGING_URL)"
    )
    create.add_argument("--directory-url", metavar="URL", help="any other ACME directory")
    create.add_argument("--key-type", choices=("rsa", "ecdsa"), help="default: CERT_KEY_TYPE")
    create.add_argument(
        "--challenge", choices=("http-01", "tls-alpn-01"), help="default: ACME_CHALLENGE"
    )
    _wait_options(create)
    create.set_defaults(func=_create)

    renew = actions.add_parser("renew", parents=[api], help="order a certificate again now")
    renew.add_argument("name", metavar="NAME")
    _wait_options(renew)
    renew.set_defaults(func=_renew)

    delete = actions.add_parser("delete", parents=[api], help="delete a certificate")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument(
        "--force", action="store_true", help="also detach it from the proxies that use it"
    )
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=_delete)

    attach = actions.add_parser(
        "attach", parents=[api], help="serve a proxy with a named certificate"
    )
    attach.add_argument("name", metavar="NAME")
    attach.add_argument("hostname", metavar="HOSTNAME")
    attach.set_defaults(func=_attach)

    detach = actions.add_parser(
        "detach", parents=[api], help="stop naming a certificate for a proxy"
    )
    detach.add_argument("hostname", metavar="HOSTNAME")
    detach.set_defaults(func=_detach)
