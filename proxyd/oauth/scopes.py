"""Scopes and allowlists: which GitHub user may sign in for which proxy, and with which scopes.

Scopes admin / user / mcp are granted by GitHub login: a proxy's oauth_{scope}_users list when set,
else OAUTH_{SCOPE}_USERS ("*" is everyone). Other scopes a proxy declares (resource_scopes,
auth_allowed_scopes) go to everyone who passes its allowlists. The management API (any resource
whose token audience includes proxyd-api, such as the `localhost` proxy and API_PORT) always
applies the management policy: OAUTH_LOCALHOST_{SCOPE}_USERS when set, else OAUTH_{SCOPE}_USERS;
per-proxy lists never count there. OAUTH_ADMIN_USERS and OAUTH_USER_USERS are empty by default,
so nobody gets a management scope until it is granted.

A request for several resources gets only the scopes that every one of them grants (decide()).
Allowlists: auth_required_users (else OAUTH_ALLOWED_GITHUB_USERS), auth_required_emails (fnmatch
patterns such as *@example.com) and auth_required_groups (GitHub organizations). They are checked
at the callback and again on every request, from token claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

import attrs

from proxyd.config import Settings
from proxyd.oauth.tokens import MANAGEMENT_AUDIENCE
from proxyd.store.models import Proxy

BUILTIN = ("admin", "user", "mcp")


def split(raw: str | list[str] | None) -> list[str] | None:
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else raw
    return [i.strip() for i in items if i.strip()]


@lru_cache(maxsize=64)
def _split_setting(raw: str) -> tuple[str, ...]:
    """split() of a setting's text, worked out once (denial reads it on every request)."""
    return tuple(split(raw) or ())


def listed(login: str, names: Sequence[str] | None) -> bool:
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
        users = _split_setting(settings.oauth_allowed_github_users)
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


def management_users(settings: Settings, scope: str) -> list[str] | None:
    local = split(getattr(settings, f"oauth_localhost_{scope}_users"))
    return local if local else split(getattr(settings, f"oauth_{scope}_users"))


def nobody_manages(settings: Settings) -> bool:
    """True when no GitHub login can get admin or user for the management API."""
    return not any(management_users(settings, s) for s in ("admin", "user"))


@attrs.frozen
class Target:
    """One RFC 8707 resource of a request: the proxy it names and the audiences it adds."""

    resource: str
    proxy: Proxy | None
    audiences: tuple[str, ...]

    @property
    def management(self) -> bool:
        return MANAGEMENT_AUDIENCE in self.audiences


def _declared(proxy: Proxy) -> set[str]:
    return set(supported_scopes(proxy)) | set(proxy.auth_allowed_scopes or [])


def offered(targets: list[Target]) -> set[str]:
    """Scopes some resource of the request knows (anything else is invalid_scope)."""
    out = set(BUILTIN)
    for target in targets:
        if target.proxy is not None and not target.management:
            out |= _declared(target.proxy)
    return out


def default_scopes(targets: list[Target]) -> list[str]:
    first = targets[0] if targets else None
    if first is None or first.management:
        return list(BUILTIN)
    return supported_scopes(first.proxy)


def _grants(settings: Settings, target: Target | None, login: str, scope: str) -> bool:
    if target is None:
        return scope in BUILTIN and listed(login, split(getattr(settings, f"oauth_{scope}_users")))
    if target.management:
        return scope in BUILTIN and listed(login, management_users(settings, scope))
    proxy = target.proxy
    if scope not in BUILTIN and (proxy is None or scope not in _declared(proxy)):
        return False
    return bool(grant(settings, proxy, login, [scope]))


def decide(
    settings: Settings, targets: list[Target], user: dict[str, Any], requested: list[str]
) -> tuple[list[str], str | None]:
    """(scopes granted, why the user is refused or None), decided for every resource: the
    user must pass each resource's allowlists, and gets only scopes that every resource grants."""
    for target in targets or [None]:
        proxy = target.proxy if target is not None else None
        reason = denial(settings, proxy, user)
        if reason is not None:
            return [], reason
    login = str(user.get("login", ""))
    granted = [
        s for s in requested if all(_grants(settings, t, login, s) for t in targets or [None])
    ]
    return granted, None
