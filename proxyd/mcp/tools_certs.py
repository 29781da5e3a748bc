"""MCP tools for certificates. create_certificate and renew_certificate follow the order and send
an MCP progress notification for each stage (queued, ordering, validating, finalizing, ready or
failed) when the client asked for progress; they return when the order has finished, or after
`wait_seconds` with the stage reached so far (the order goes on in the background)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import trio
from mcp.server.mcpserver import Context
from pydantic import Field

from proxyd.manage import certificates
from proxyd.mcp.schemas import CertificateInfo, CertificateList, CertificateResult, Done
from proxyd.tls.status import STAGES

CertName = Annotated[str, Field(description="The certificate's name, e.g. grafana-example-com")]
WaitSeconds = Annotated[
    int, Field(ge=0, le=600, description="How long to follow the order (0: do not wait).")
]


async def _info(mctx: Any, cert: Any) -> CertificateInfo:
    status = await certificates.order_status(mctx, cert.cert_name)
    return CertificateInfo.of(cert, status, certificates.proxies_using(mctx, cert))


async def _follow(ctx: Context, mctx: Any, name: str, events: Any, wait_seconds: int) -> None:
    """Report each stage of the order as progress until it finishes or time is up."""
    total = len(STAGES) - 1  # ready (or failed) is the last step
    with trio.move_on_after(wait_seconds):
        async for status in certificates.follow_status(mctx, name, events):
            stage = status.get("stage", "")
            step = total if stage in ("ready", "failed") else STAGES.index(stage) + 1
            message = f"{stage}: {status.get('reason') or status.get('message') or ''}".rstrip(": ")
            await ctx.report_progress(step, total, message)


def register(tools: Any) -> None:
    @tools.tool(scope="user", title="List certificates", read_only=True, idempotent=True)
    async def list_certificates(ctx: Context) -> CertificateList:
        """Every certificate: names covered, status, expiry, and the proxies using it."""
        mctx = tools.caller(ctx)
        found = await certificates.list_certificates(mctx)
        return CertificateList(certificates=[await _info(mctx, c) for c in found])

    @tools.tool(scope="user", title="Show a certificate", read_only=True, idempotent=True)
    async def get_certificate(ctx: Context, name: CertName) -> CertificateResult:
        """One certificate with its current order stage (certificate null when there is none)."""
        mctx = tools.caller(ctx)
        cert = await certificates.get_certificate(mctx, name)
        return CertificateResult(certificate=await _info(mctx, cert) if cert else None)

    @tools.tool(scope="admin", title="Order a certificate", timeout=660)
    async def create_certificate(
        ctx: Context,
        name: CertName,
        domains: Annotated[list[str], Field(min_length=1, max_length=100)],
        email: str | None = None,
        staging: bool = False,
        key_type: Literal["rsa", "ecdsa"] | None = None,
        challenge: Literal["http-01", "tls-alpn-01"] | None = None,
        directory_url: Annotated[
            str | None, Field(description="ACME directory (default: ACME_DIRECTORY_URL)")
        ] = None,
        wait_seconds: WaitSeconds = 120,
    ) -> CertificateInfo:
        """Order a certificate from the ACME CA; progress is reported stage by stage."""
        mctx = tools.caller(ctx)
        fields = {
            "name": name,
            "domains": domains,
            "email": email,
            "staging": staging,
            "key_type": key_type,
            "challenge": challenge,
            "directory_url": directory_url,
        }
        with mctx.manager.bus.listen() as events:  # before the order starts: no stage missed
            cert = await certificates.create_certificate(mctx, fields)
            await _follow(ctx, mctx, cert.cert_name, events, wait_seconds)
        return await _info(mctx, await certificates.get_certificate(mctx, cert.cert_name) or cert)

    @tools.tool(scope="admin", title="Renew a certificate", idempotent=True, timeout=660)
    async def renew_certificate(
        ctx: Context, name: CertName, wait_seconds: WaitSeconds = 120
    ) -> CertificateInfo:
        """Order a fresh certificate now; progress is reported stage by stage."""
        mctx = tools.caller(ctx)
        with mctx.manager.bus.listen() as events:
            cert = await certificates.renew_certificate(mctx, name)
            await _follow(ctx, mctx, cert.cert_name, events, wait_seconds)
        return await _info(mctx, await certificates.get_certificate(mctx, cert.cert_name) or cert)

    @tools.tool(scope="admin", title="Delete a certificate", destructive=True)
    async def delete_certificate(ctx: Context, name: CertName, force: bool = False) -> Done:
        """Delete a certificate; force also detaches it from the proxies that use it."""
        await certificates.delete_certificate(tools.caller(ctx), name, force=force)
        return Done(ok=True, message=f"certificate {name.strip().lower()} deleted.")
