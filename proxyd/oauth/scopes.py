"""Scopes and allowlists: which GitHub user may sign in for which proxy, and with which scopes.

Scopes admin / user / mcp are granted by GitHub login: a proxy's oauth_{scope}_users list when set,
for the `localhost` proxy OAUTH_LOCALHOST_{SCOPE}_USERS when set, else OAUTH_{SCOPE}_USERS ("*" is
everyone). Other scopes a proxy declares (resource_scopes, auth_allowed_scopes) go to everyone
who passes its allowlists. Allowlists: auth_required_users (else OAUTH_ALLOWED_GITHUB_USERS),
auth_required_emails (fnmatch patterns such as *@example.com) and auth_required_groups (GitHub
organizations). They are checked at the callback and again on every request, from token claims.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from proxyd.config import Settings
from proxyd.store.models import Proxy

BUILTIN = ("admin", "user", "mcp")


def split(raw: str | list[str] | None) -> list[str] | None:
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else raw
    return [i.strip() for i in items if i.strip()]


def listed(login: str, names: list[str] | None) -> bool:
    if not names:
        return False
    return "*" in names or login.lower() in {n.lower() for n in names}


def supported_scopes(proxy: Proxy | None) -> list[str]:
    """The scopes a resource offers (PRM scopes_supported, default request)."""
    if proxy is None:
        return list(BUILTIN)
    return list(proxy.resource_scopes or proxy.auth_allowed_scopes or ["mcp"])


def required_scopes(proxy: Proxy) -> list[str]:
    """A token needs one of these for the proxy (empty: any scope)."""
    return list(proxy.auth_allowed_scopes or [])


def _scope_users(settings: Settings, proxy: Proxy | None, scope: str) -> list[str] | None:
    per_proxy = getattr(proxy, f"oauth_{scope}_users", None) if proxy else None
    if per_proxy is not None:
        return per_proxy
    if proxy is not None and proxy.hostname == "localhost":
        local = split(getattr(settings, f"oauth_localhost_{scope}_users"))
        if local:
            return local
    return split(getattr(settings, f"oauth_{scope}_users"))


def grant(settings: Settings, proxy: Proxy | None, login: str, requested: list[str]) -> list[str]:
    """The requested scopes this user gets."""
    out = []
    for scope in requested:
        if scope in BUILTIN:
            if listed(login, _scope_users(settings, proxy, scope)):
                out.append(scope)
        else:
            out.append(scope)
    return out


def denial(settings: Settings, proxy: Proxy | None, user: dict[str, Any]) -> str | None:
    """Why this user may not use the proxy (None: allowed). user: login, emails, orgs."""
    login = str(user.get("login", ""))
    users = proxy.auth_required_users if proxy is not None else None
    if users is None:
        users = split(settings.oauth_allowed_github_users)
    if not listed(login, users):
        return f"GitHub user {login!r} is not allowed here."
    if proxy is None:
        return None
    if proxy.auth_required_emails:
        emails = [str(e).lower() for e in user.get("emails") or []]
        patterns = [p.lower() for p in proxy.auth_required_emails]
        if "*" not in patterns and not any(fnmatchcase(e, p) for e in emails for p in patterns):
            return "no verified email address of this user is allowed here."
    if proxy.auth_required_groups:
        orgs = {str(o).lower() for o in user.get("orgs") or []}
        if not orgs & {g.lower() for g in proxy.auth_required_groups}:
            return "this user is in none of the GitHub organizations allowed here."
    return None
