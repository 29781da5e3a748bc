"""/authorize (PKCE S256 only, RFC 8707 resource, RFC 9207 iss), the consent page, and /callback
from GitHub's web flow.

1. /authorize checks the client and its redirect URI first; until both are known good, errors
   are shown as a page (never redirected). After that every error goes back to the client with
   error, error_description, state and iss.
2. A pending login (`oauth:state:{txn}`) is stored and the consent page is shown, unless the
   browser's session belongs to a user who already approved this client for exactly these
   resources and scopes (MCP confused-deputy rule); the device flow always shows it, with the
   user code. Scopes are decided per resource (scopes.decide). The page names the client, its
   redirect URI's host, the scopes and the resource; it is CSRF protected (a random token in the
   form that must equal the one in an HttpOnly cookie and in the pending login) and cannot be
   framed.
3. Approving sends the browser to GitHub with a fresh random, single-use, short-lived state, and
   binds the flow to the browser with a cookie; /callback checks both, exchanges GitHub's code,
   reads the user, applies the allowlists and scopes, and redirects back with a single-use code.
"""

from __future__ import annotations

import hmac
import re
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from quart import Blueprint, Response, redirect, request

from proxyd.oauth import scopes as scope_rules
from proxyd.oauth.clients import builtin_host, find_client, redirect_ok
from proxyd.oauth.github import GitHubError
from proxyd.oauth.http import esc, page, params, read_cookie, repeated, set_cookie
from proxyd.oauth.server import AuthServer, OAuthFailure
from proxyd.oauth.store import digest, new_secret, session_key

CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
CSRF_COOKIE = "proxyd_csrf"
FLOW_COOKIE = "proxyd_flow"
SESSION_COOKIE = "proxyd_session"


def error_page(title: str, message: str, status: int = 400) -> Response:
    return page(title, f"<p>{esc(message)}</p>", status)


def client_redirect(server: AuthServer, redirect_uri: str, **values: str | None) -> Response:
    """A redirect back to the client, always with iss (RFC 9207)."""
    query = {k: v for k, v in values.items() if v is not None}
    query["iss"] = server.issuer
    sep = "&" if urlsplit(redirect_uri).query else "?"
    response = redirect(redirect_uri + sep + urlencode(query), 302)
    response.headers["Cache-Control"] = "no-store"
    return response


def consent_page(server: AuthServer, txn_id: str, txn: dict[str, Any]) -> Response:
    redirect_host = urlsplit(txn.get("redirect_uri") or "").netloc or "this device"
    device = (
        f"<p>The device must show the code <b><code>{esc(txn['user_code'])}</code></b>. "
        "If it does not, or you did not start this yourself, deny.</p>"
        if txn["kind"] == "device"
        else ""
    )
    scopes = "".join(f"<li><code>{esc(s)}</code></li>" for s in txn["scopes"]) or "<li>none</li>"
    resources = ", ".join(esc(r) for r in txn["resources"]) or "proxyd"
    body = (
        f"<p><b>{esc(txn['client_name'])}</b> (client <code>{esc(txn['client_id'])}</code>) "
        f"asks to act for you at <b>{resources}</b>.</p>{device}"
        f"<p>After you sign in with GitHub you will be sent to <b>{esc(redirect_host)}</b>.</p>"
        f"<p>It asks for these scopes:</p><ul>{scopes}</ul>"
        f"<form method=post action='{esc(server.url('/authorize/consent'))}'>"
        f"<input type=hidden name=txn value='{esc(txn_id)}'>"
        f"<input type=hidden name=csrf value='{esc(txn['csrf'])}'>"
        "<button name=action value=approve>Approve</button>"
        "<button name=action value=deny>Deny</button></form>"
        "<p>Only approve if you started this sign-in and trust this application.</p>"
    )
    response = page("Authorize access", body)
    set_cookie(
        response,
        CSRF_COOKIE,
        txn["csrf"],
        server.settings.oauth_session_timeout,
        server.secure_cookies,
    )
    return response


async def go_upstream(server: AuthServer, txn: dict[str, Any]) -> Response:
    """Send the browser to GitHub with a fresh single-use state bound to it by a cookie."""
    proxy = server.proxy_of(txn["proxy"]) if txn.get("proxy") else None
    app = await server.github_app(proxy)
    if app is None:
        raise OAuthFailure(
            "temporarily_unavailable", "GitHub login is not configured on this server.", 503
        )
    state = new_secret(24)
    binding = new_secret(24)
    txn = dict(txn, binding=digest(binding), github_client_id=app.client_id)
    await server.store.put_state(state, txn, server.settings.oauth_session_timeout)
    response = redirect(server.github.authorize_url(app, server.url("/callback"), state), 302)
    response.headers["Cache-Control"] = "no-store"
    set_cookie(
        response,
        FLOW_COOKIE,
        binding,
        server.settings.oauth_session_timeout,
        server.secure_cookies,
    )
    return response


async def started_by_proxy(
    server: AuthServer, host: str, redirect_uri: str, state: str | None
) -> bool:
    """A built-in proxy client's request must carry the state of a sign-in its proxy started,
    for this exact callback URL (so no one else can aim the proxy's client elsewhere)."""
    data = await server.store.get_state(f"edge:{state}") if state else None
    return bool(data and data.get("host") == host and data.get("redirect_uri") == redirect_uri)


async def start_login(server: AuthServer, txn: dict[str, Any]) -> Response:
    """Consent, then GitHub. The consent page is skipped only when this browser's user already
    approved this client for exactly these resources and scopes; the device flow always asks
    (RFC 8628 section 5.4: the user must compare the code)."""
    session_id = read_cookie(SESSION_COOKIE, server.secure_cookies)
    session = await server.store.session_of(session_id) if session_id else None
    if (
        txn["kind"] != "device"
        and session
        and await server.store.approved(
            session["user"], txn["client_id"], txn["resources"], txn["scopes"]
        )
    ):
        return await go_upstream(server, txn)
    txn_id = new_secret(24)
    txn["csrf"] = new_secret(24)
    await server.store.put_state(f"txn:{txn_id}", txn, server.settings.oauth_session_timeout)
    return consent_page(server, txn_id, txn)


def register(bp: Blueprint, server: AuthServer) -> None:
    @bp.route("/authorize", methods=["GET", "POST"])
    async def authorize() -> Response:
        form = await params()
        dup = await repeated()
        client_id = form.get("client_id", "")
        try:
            client = await find_client(server, client_id)
        except OAuthFailure as exc:
            return error_page("Unknown application", exc.description)
        if client is None:
            return error_page("Unknown application", "client_id is missing or not registered.")
        registered = client.get("redirect_uris") or []
        redirect_uri = form.get("redirect_uri", "")
        if not redirect_uri and len(registered) == 1:
            redirect_uri = registered[0]
        if not redirect_uri or not redirect_ok(server, client, redirect_uri):
            return error_page(
                "Invalid redirect URI",
                "redirect_uri does not exactly match one registered for this client.",
            )
        state = form.get("state") or None
        proxy_host = builtin_host(client_id)
        if proxy_host is not None and not await started_by_proxy(
            server, proxy_host, redirect_uri, state
        ):
            return error_page(
                "Sign-in expired", "this sign-in was not started by the proxy, or it expired."
            )

        def fail(error: str, description: str) -> Response:
            return client_redirect(
                server, redirect_uri, error=error, error_description=description, state=state
            )

        if dup:
            return fail("invalid_request", f"parameter {dup} was given more than once.")
        if form.get("response_type") != "code":
            return fail("unsupported_response_type", "response_type must be code.")
        if "authorization_code" not in client.get("grant_types", ["authorization_code"]):
            return fail("unauthorized_client", "this client may not use authorization codes.")
        challenge = form.get("code_challenge", "")
        method = form.get("code_challenge_method", "plain")
        if not challenge:
            return fail("invalid_request", "PKCE is required: send code_challenge (S256).")
        if method != "S256":
            return fail("invalid_request", "code_challenge_method must be S256.")
        if not CHALLENGE.match(challenge):
            return fail("invalid_request", "code_challenge is not a valid S256 challenge.")
        resources = (
            (await request.form).getlist("resource")
            if request.method == "POST"
            else request.args.getlist("resource")
        )
        try:
            targets = server.targets(resources)
        except OAuthFailure as exc:
            return fail(exc.error, exc.description)
        if proxy_host is not None and not (
            len(targets) == 1
            and not targets[0].management
            and targets[0].proxy is not None
            and targets[0].proxy.hostname == proxy_host
        ):
            return fail("invalid_target", "this proxy's sign-in may only ask for the proxy itself.")
        requested = form.get("scope", "").split() or scope_rules.default_scopes(targets)
        offered = scope_rules.offered(targets)
        unknown = [s for s in requested if s not in offered]
        if unknown:
            return fail("invalid_scope", f"unknown scope {unknown[0]!r}.")
        txn = {
            "kind": "authorize",
            "client_id": client_id,
            "client_name": client.get("client_name") or client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "scopes": requested,
            "resources": resources,
            "audiences": server.audiences(targets),
            "proxy": getattr(server.main_proxy(targets), "hostname", None),
            "started": int(time.time()),
        }
        try:
            return await start_login(server, txn)
        except OAuthFailure as exc:
            return fail(exc.error, exc.description)

    @bp.post("/authorize/consent")
    async def consent() -> Response:
        form = await params()
        txn_id = form.get("txn", "")
        txn = await server.store.take_state(f"txn:{txn_id}") if txn_id else None
        if txn is None:
            return error_page("Sign-in expired", "this sign-in expired or was already used.")
        cookie = read_cookie(CSRF_COOKIE, server.secure_cookies) or ""
        sent = form.get("csrf", "")
        if not (
            sent
            and hmac.compare_digest(sent, txn["csrf"])
            and hmac.compare_digest(cookie, txn["csrf"])
        ):
            return error_page("Request refused", "the form's CSRF check failed.", 403)
        if form.get("action") != "approve":
            if txn["kind"] == "device":
                await finish_device(server, txn, None, denied=True)
                return page("Access denied", "<p>You denied the device's request.</p>")
            return client_redirect(
                server,
                txn["redirect_uri"],
                error="access_denied",
                error_description="the user denied the request.",
                state=txn.get("state"),
            )
        try:
            return await go_upstream(server, txn)
        except OAuthFailure as exc:
            if txn["kind"] == "device":
                return error_page("Sign-in unavailable", exc.description, exc.status)
            return client_redirect(
                server,
                txn["redirect_uri"],
                error=exc.error,
                error_description=exc.description,
                state=txn.get("state"),
            )

    @bp.get("/callback")
    async def callback() -> Response:
        state = request.args.get("state", "")
        txn = await server.store.take_state(state) if state else None
        if txn is None or "binding" not in txn:
            return error_page("Sign-in expired", "this sign-in expired or was already used.")
        binding = read_cookie(FLOW_COOKIE, server.secure_cookies) or ""
        if not hmac.compare_digest(digest(binding), txn["binding"]):
            return error_page("Request refused", "this sign-in was started in another browser.")
        device = txn["kind"] == "device"

        def fail(error: str, description: str) -> Response:
            if device:
                return error_page("Sign-in failed", description, 403)
            return client_redirect(
                server,
                txn["redirect_uri"],
                error=error,
                error_description=description,
                state=txn.get("state"),
            )

        if request.args.get("error") or not request.args.get("code"):
            return fail("access_denied", "GitHub sign-in was cancelled or refused.")
        try:
            targets = server.targets(txn["resources"])
        except OAuthFailure as exc:
            return fail(exc.error, exc.description)
        proxy = server.proxy_of(txn["proxy"]) if txn.get("proxy") else None
        app = await server.github_app(proxy)
        if app is None or app.client_id != txn.get("github_client_id"):
            return fail("temporarily_unavailable", "the GitHub app changed during sign-in.")
        try:
            token = await server.github.exchange(app, request.args["code"], server.url("/callback"))
            user = await server.github.user(token)
        except GitHubError as exc:
            return fail("temporarily_unavailable", str(exc))
        granted, reason = scope_rules.decide(server.settings, targets, user, txn["scopes"])
        if reason is None and not txn["scopes"]:
            reason = "no scope was requested."
        if reason is None and not granted:
            reason = f"{user['login']} may not have any of the scopes {' '.join(txn['scopes'])}."
        if reason is not None:
            await server.store.count("logins_denied")
            if device:
                await finish_device(server, txn, None, denied=True)
            return fail("access_denied", reason)
        await server.store.approve(user["login"], txn["client_id"], txn["resources"], txn["scopes"])
        await server.store.count("logins")
        previous = read_cookie(SESSION_COOKIE, server.secure_cookies)
        if previous:  # a fresh login replaces this browser's earlier session
            await server.store.delete_session(session_key(previous))
        session_id = new_secret(24)
        await server.store.put_session(
            session_id, user["login"], txn["client_id"], server.settings.oauth_session_timeout
        )
        if device:
            await finish_device(server, txn, dict(user, scopes=granted))
            response = page("Device approved", "<p>You are signed in. Return to your device.</p>")
        else:
            code = new_secret(32)
            await server.store.put_code(
                code,
                {
                    "client_id": txn["client_id"],
                    "redirect_uri": txn["redirect_uri"],
                    "code_challenge": txn["code_challenge"],
                    "scopes": granted,
                    "resources": txn["resources"],
                    "audiences": txn["audiences"],
                    "user": user,
                },
            )
            response = client_redirect(
                server, txn["redirect_uri"], code=code, state=txn.get("state")
            )
        set_cookie(
            response,
            SESSION_COOKIE,
            session_id,
            server.settings.oauth_session_timeout,
            server.secure_cookies,
        )
        return response


async def finish_device(
    server: AuthServer, txn: dict[str, Any], user: dict[str, Any] | None, denied: bool = False
) -> None:
    found = await server.store.device_by_user_code(txn["user_code"])
    if found is None:
        return
    device_hash, data = found
    data.update(status="denied" if denied else "approved", user=user)
    await server.store.update_device(device_hash, data)
