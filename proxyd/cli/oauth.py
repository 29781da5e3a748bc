"""`proxyd login` / `proxyd logout` (device flow; the tokens are kept in a 0600 file under the
user's config directory and used when neither --token nor PROXYD_TOKEN is given; the access token
is refreshed with the stored refresh token when it is about to expire), `proxyd oauth status`
(who is signed in, the scopes and the expiry) and
`proxyd oauth client list|show|delete`, `proxyd oauth token list|revoke`,
`proxyd oauth session list|revoke`."""

from __future__ import annotations

import argparse
import time

from proxyd.cli.client import resolve_api_url
from proxyd.cli.credentials import (
    REFRESH_MARGIN,
    claims_of,
    login_path,
    login_record,
    read_login,
    stored_token,
    write_login,
)
from proxyd.cli.errors import CliError
from proxyd.cli.options import call
from proxyd.cli.output import print_fields, print_json, print_table, report

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _login(args: argparse.Namespace) -> int:
    import httpx

    api_url = resolve_api_url(args.api_url)
    try:
        meta = httpx.get(f"{api_url}/.well-known/oauth-authorization-server", timeout=10).json()
        client = httpx.post(
            meta["registration_endpoint"],
            json={
                "client_name": "proxyd CLI",
                "grant_types": [DEVICE_GRANT, "refresh_token"],
                "token_endpoint_auth_method": "none",
            },
            timeout=10,
        ).json()
        form = {"client_id": client["client_id"], "scope": args.scope, "resource": api_url}
        device = httpx.post(meta["device_authorization_endpoint"], data=form, timeout=10).json()
        if "device_code" not in device:
            raise CliError(f"login refused: {device.get('error_description', device)}")
        print(f"Open {device['verification_uri_complete']}")
        print(f"and check that it shows the code {device['user_code']}.", flush=True)
        interval = int(device.get("interval", 5))
        deadline = time.monotonic() + int(device.get("expires_in", 300))
        while time.monotonic() < deadline:
            time.sleep(interval)
            answer = httpx.post(
                meta["token_endpoint"],
                data={
                    "grant_type": DEVICE_GRANT,
                    "device_code": device["device_code"],
                    "client_id": client["client_id"],
                },
                timeout=10,
            ).json()
            error = answer.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            if error:
                raise CliError(f"login failed: {answer.get('error_description', error)}")
            base = {
                "api_url": api_url,
                "client_id": client["client_id"],
                "token_endpoint": meta["token_endpoint"],
            }
            path = write_login(login_record(base, answer))
            print(f"signed in with scopes {answer.get('scope')}; token stored in {path}")
            return 0
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise CliError(f"login against {api_url} failed ({type(exc).__name__}).") from None
    raise CliError("the login code expired; run `proxyd login` again.")


def _status(args: argparse.Namespace) -> int:
    data = read_login()
    if data is None:
        raise CliError("not signed in: run `proxyd login`.", 1)
    if data.get("expires_at", 0) <= time.time() + REFRESH_MARGIN:
        stored_token()  # refresh when it can, so the status shows what the next command uses
        data = read_login() or data
    expires = float(data.get("expires_at", 0))
    left = int(expires - time.time())
    info = {
        "user": data.get("user") or claims_of(str(data.get("access_token", ""))).get("sub"),
        "api_url": data.get("api_url"),
        "client_id": data.get("client_id"),
        "scopes": data.get("scope") or "",
        "expires_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires)),
        "expires_in": f"{left} s" if left > 0 else "expired",
        "refreshable": bool(data.get("refresh_token")),
    }
    if args.json:
        print_json(info)
    else:
        print_fields(info)
    if left <= 0:
        raise CliError("the stored login expired and could not be refreshed: run `proxyd login`.")
    return 0


def _logout(args: argparse.Namespace) -> int:
    path = login_path()
    try:
        path.unlink()
        print(f"signed out (removed {path})")
    except FileNotFoundError:
        print("not signed in")
    return 0


CLIENTS = "query { oauthClients { clientId clientName redirectUris grantTypes tokenEndpointAuthMethod clientIdIssuedAt } }"
CLIENT = "query($c: String!) { oauthClient(clientId: $c) { clientId clientName redirectUris grantTypes tokenEndpointAuthMethod clientIdIssuedAt } }"
DELETE_CLIENT = "mutation($c: String!) { deleteOAuthClient(clientId: $c) }"
TOKENS = "query($u: String) { oauthTokens(user: $u) { jti subject clientId scope audience expiresAt revoked } }"
REVOKE = "mutation($j: String!) { revokeOAuthToken(jti: $j) }"
REVOKE_USER = "mutation($u: String!) { revokeUserTokens(user: $u) }"
SESSIONS = "query($u: String) { oauthSessions(user: $u) { id user clientId createdAt expiresAt } }"
REVOKE_SESSION = "mutation($i: String!) { revokeOAuthSession(id: $i) }"


def _client_list(args: argparse.Namespace) -> int:
    data = call(args, CLIENTS)
    if args.json:
        print_json(data)
        return 0
    rows = [
        (c["clientId"], c["clientName"], c["tokenEndpointAuthMethod"], " ".join(c["redirectUris"]))
        for c in data["oauthClients"]
    ]
    print_table(("CLIENT ID", "NAME", "AUTH", "REDIRECT URIS"), rows, "no OAuth clients")
    return 0


def _client_show(args: argparse.Namespace) -> int:
    data = call(args, CLIENT, {"c": args.client_id})
    if data["oauthClient"] is None:
        raise CliError(f"no OAuth client {args.client_id!r}.")
    print_json(data) if args.json else print_fields(data["oauthClient"])
    return 0


def _client_delete(args: argparse.Namespace) -> int:
    data = call(args, DELETE_CLIENT, {"c": args.client_id})
    report(args, data, f"deleted OAuth client {args.client_id}")
    return 0


def _token_list(args: argparse.Namespace) -> int:
    data = call(args, TOKENS, {"u": args.user})
    if args.json:
        print_json(data)
        return 0
    rows = [
        (t["jti"], t["subject"], t["clientId"], t["scope"], t["expiresAt"], t["revoked"])
        for t in data["oauthTokens"]
    ]
    print_table(("JTI", "USER", "CLIENT", "SCOPE", "EXPIRES", "REVOKED"), rows, "no tokens")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    if args.user:
        data = call(args, REVOKE_USER, {"u": args.user})
        message = f"revoked {data['revokeUserTokens']} token(s) of {args.user}"
    elif args.jti:
        data = call(args, REVOKE, {"j": args.jti})
        message = f"revoked token {args.jti}"
    else:
        raise CliError("give a token id (JTI) or --user LOGIN.", 2)
    report(args, data, message)
    return 0


def _session_list(args: argparse.Namespace) -> int:
    data = call(args, SESSIONS, {"u": args.user})
    if args.json:
        print_json(data)
        return 0
    rows = [
        (s["id"], s["user"], s["clientId"], s["createdAt"], s["expiresAt"])
        for s in data["oauthSessions"]
    ]
    print_table(("ID", "USER", "CLIENT", "CREATED", "EXPIRES"), rows, "no sessions")
    return 0


def _session_revoke(args: argparse.Namespace) -> int:
    data = call(args, REVOKE_SESSION, {"i": args.session_id})
    report(args, data, f"revoked session {args.session_id}")
    return 0


def register(sub: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    """Add `login`, `logout` and the `oauth` command group."""
    login = sub.add_parser("login", parents=[api], help="sign in with the device flow")
    login.add_argument("--scope", default="admin user", help="scopes to ask for")
    login.set_defaults(func=_login)
    sub.add_parser("logout", help="forget the stored login").set_defaults(func=_logout)

    group = sub.add_parser("oauth", help="OAuth clients, tokens and sessions")
    kinds = group.add_subparsers(dest="oauth_kind", required=True, metavar="KIND")
    status = kinds.add_parser("status", help="who is signed in with `proxyd login`")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)
    client = kinds.add_parser("client", help="registered OAuth clients")
    actions = client.add_subparsers(dest="oauth_client_command", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[api], help="list clients").set_defaults(func=_client_list)
    for name, func in (("show", _client_show), ("delete", _client_delete)):
        parser = actions.add_parser(name, parents=[api], help=f"{name} a client")
        parser.add_argument("client_id", metavar="CLIENT_ID")
        parser.set_defaults(func=func)
    token = kinds.add_parser("token", help="issued access tokens")
    actions = token.add_subparsers(dest="oauth_token_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[api], help="list tokens")
    listing.add_argument("--user", metavar="LOGIN")
    listing.set_defaults(func=_token_list)
    revoke = actions.add_parser("revoke", parents=[api], help="revoke a token or a user's tokens")
    revoke.add_argument("jti", metavar="JTI", nargs="?")
    revoke.add_argument("--user", metavar="LOGIN")
    revoke.set_defaults(func=_token_revoke)
    session = kinds.add_parser("session", help="browser login sessions at the authorization server")
    actions = session.add_subparsers(dest="oauth_session_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[api], help="list sessions")
    listing.add_argument("--user", metavar="LOGIN")
    listing.set_defaults(func=_session_list)
    revoke = actions.add_parser("revoke", parents=[api], help="end a session")
    revoke.add_argument("session_id", metavar="ID")
    revoke.set_defaults(func=_session_revoke)
