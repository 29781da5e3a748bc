"""ACME orders with certbot's `acme` library. The library is synchronous (requests), so
`run_order` is meant to run in a worker thread (trio.to_thread.run_sync); it calls back into trio
(`trio.from_thread.run`) to publish challenge answers and status stages.

One order: account (one per directory URL; its key is kept in Redis by the caller), new key and
CSR for up to 100 names, HTTP-01 or TLS-ALPN-01 for every pending authorization, polling with the
ACME_POLL_* settings, finalization, and the full chain back. Every failure becomes an `AcmeError`
whose message is one sentence for people (the CA's own problem detail when it sent one).
Nothing here logs key material: the library's request/response debug logging is capped at INFO.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs

from proxyd.tls.certificate import key_pem, new_private_key

log = logging.getLogger("proxyd.tls.acme")
# The acme library logs whole JWS bodies and responses at DEBUG; keep that out of proxyd's log.
logging.getLogger("acme").setLevel(logging.INFO)
logging.getLogger("urllib3").setLevel(logging.INFO)


class AcmeError(Exception):
    """An order failed; str() is one sentence saying why."""


@attrs.frozen
class OrderRequest:
    domains: list[str]
    directory_url: str
    email: str | None = None
    key_type: str = "rsa"
    rsa_key_size: int = 2048
    challenge: str = "http-01"
    ca_bundle: str | None = None
    poll_max_attempts: int = 60
    poll_interval: float = 2.0
    poll_initial_wait: float = 0.0
    account_key_json: str | None = None  # the stored account key for this directory, if any


@attrs.frozen
class OrderResult:
    fullchain_pem: str
    private_key_pem: str
    account_key_json: str
    account_uri: str


# Callbacks into trio (each run with trio.from_thread.run by the caller's wrappers).
Stage = Callable[[str, str], None]  # (stage, message)
Provide = Callable[[str, str, str, str], None]  # (challenge type, domain, token, key authorization)
Withdraw = Callable[[str, str, str], None]  # (challenge type, domain, token)


def run_order(
    request: OrderRequest, stage: Stage, provide: Provide, withdraw: Withdraw
) -> OrderResult:
    """Obtain a certificate (blocking). Raises AcmeError."""
    import josepy
    import requests
    from acme import errors, messages

    try:
        return _order(request, stage, provide, withdraw)
    except AcmeError:
        raise
    except messages.Error as exc:
        raise AcmeError(f"the ACME server refused: {_problem(exc)}.") from None
    except errors.ValidationError as exc:
        raise AcmeError(_validation_failure(exc.failed_authzrs)) from None
    except errors.TimeoutError:
        raise AcmeError(
            "the ACME server did not finish the order in time (ACME_POLL_MAX_ATTEMPTS)."
        ) from None
    except requests.exceptions.SSLError as exc:
        raise AcmeError(
            f"the TLS certificate of the ACME directory {request.directory_url} is not trusted "
            f"({_short(exc)}); set ACME_CA_BUNDLE to the CA file that signed it."
        ) from None
    except requests.exceptions.RequestException as exc:
        raise AcmeError(
            f"cannot reach the ACME directory {request.directory_url} ({_short(exc)})."
        ) from None
    except (errors.Error, josepy.errors.Error, ValueError, KeyError) as exc:
        raise AcmeError(f"the ACME order failed: {type(exc).__name__}: {_short(exc)}.") from None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def _problem(error: Any) -> str:
    detail = getattr(error, "detail", None) or getattr(error, "description", None)
    code = getattr(error, "code", None) or getattr(error, "typ", "")
    return f"{detail} ({code})" if code else str(detail or error)


def _validation_failure(authzrs: list) -> str:
    parts = []
    for authzr in authzrs:
        name = authzr.body.identifier.value
        for challb in authzr.body.challenges:
            if challb.error is not None:
                parts.append(f"{name}: {_problem(challb.error)}")
    return "challenge validation failed: " + ("; ".join(parts) or "no detail from the CA") + "."


def _order(
    request: OrderRequest, stage: Stage, provide: Provide, withdraw: Withdraw
) -> OrderResult:
    import josepy
    from acme import challenges, client, crypto_util, errors, messages

    if request.account_key_json:
        account_key = josepy.JWK.json_loads(request.account_key_json)
    else:
        account_key = josepy.JWKRSA(key=new_private_key("rsa", 2048))
    verify: bool | str = request.ca_bundle or True
    net = client.ClientNetwork(account_key, user_agent="proxyd", verify_ssl=verify, timeout=30)
    stage("ordering", f"contacting {request.directory_url}")
    directory = client.ClientV2.get_directory(request.directory_url, net)
    acme = client.ClientV2(directory, net)
    contact = (f"mailto:{request.email}",) if request.email else ()
    try:
        regr = acme.new_account(
            messages.NewRegistration.from_data(email=request.email, terms_of_service_agreed=True)
            if request.email
            else messages.NewRegistration(terms_of_service_agreed=True, contact=contact)
        )
    except errors.ConflictError as exc:  # the account exists: use it
        regr = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
        net.account = regr

    key = new_private_key(request.key_type, request.rsa_key_size)
    private_pem = key_pem(key)
    csr = crypto_util.make_csr(private_pem, request.domains)
    order = acme.new_order(csr)
    stage("validating", f"answering {request.challenge} for {', '.join(request.domains)}")

    provided: list[tuple[str, str, str]] = []
    try:
        answers = []
        for authzr in order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue
            domain = authzr.body.identifier.value
            challb = _pick(authzr, request.challenge)
            if challb is None:
                offered = ", ".join(c.chall.typ for c in authzr.body.challenges)
                raise AcmeError(
                    f"the ACME server offers no {request.challenge} challenge for {domain} "
                    f"(it offers {offered})."
                )
            token = (
                challb.chall.jobj["token"]
                if request.challenge == "tls-alpn-01"
                else (challb.chall.encode("token"))
            )
            thumbprint = josepy.b64encode(account_key.thumbprint()).decode()
            key_authorization = f"{token}.{thumbprint}"
            provide(request.challenge, domain, token, key_authorization)
            provided.append((request.challenge, domain, token))
            if request.challenge == "http-01":
                response = challenges.HTTP01Response(key_authorization=key_authorization)
            else:
                response = _tls_alpn_response()
            answers.append((challb, response))
        for challb, response in answers:
            acme.answer_challenge(challb, response)
        if request.poll_initial_wait:
            time.sleep(request.poll_initial_wait)
        _poll_authorizations(acme, order, request)
        stage("finalizing", "all names validated; asking for the certificate")
        deadline = dt.datetime.now() + dt.timedelta(
            seconds=max(30.0, request.poll_max_attempts * request.poll_interval)
        )
        order = acme.finalize_order(order, deadline)
    finally:
        for kind, domain, token in provided:
            try:
                withdraw(kind, domain, token)
            except Exception:  # noqa: BLE001 - cleanup must not hide the order's outcome
                log.warning("could not withdraw the %s answer for %s", kind, domain)
    return OrderResult(
        fullchain_pem=order.fullchain_pem,
        private_key_pem=private_pem.decode(),
        account_key_json=account_key.json_dumps(),
        account_uri=regr.uri or "",
    )


def _pick(authzr, wanted: str):
    for challb in authzr.body.challenges:
        if (
            challb.chall.typ == wanted
            or (getattr(challb.chall, "jobj", None) or {}).get("type") == wanted
        ):
            return challb
    return None


def _poll_authorizations(acme, order, request: OrderRequest) -> None:
    from acme import errors, messages

    pending = list(order.authorizations)
    for _attempt in range(request.poll_max_attempts):
        still = []
        failed = []
        for authzr in pending:
            updated, _ = acme.poll(authzr)
            status = updated.body.status
            if status == messages.STATUS_VALID:
                continue
            if status == messages.STATUS_PENDING:
                still.append(updated)
            else:
                failed.append(updated)
        if failed:
            raise errors.ValidationError(failed)
        if not still:
            return
        pending = still
        time.sleep(request.poll_interval)
    raise errors.TimeoutError()


def _tls_alpn_response():
    """The (empty) response that tells the CA to validate tls-alpn-01 (RFC 8737); acme 5 no
    longer ships a class for it."""
    from acme import challenges

    class TlsAlpn01Response(challenges.ChallengeResponse):
        typ = "tls-alpn-01"

        def __bool__(self) -> bool:  # an object without fields is falsy: it would become an
            return True  # empty POST-as-GET instead of the `{}` that starts validation

    return TlsAlpn01Response()
