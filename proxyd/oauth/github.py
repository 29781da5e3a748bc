"""The upstream identity provider: GitHub's OAuth web flow and REST API (/user, /user/emails,
/user/orgs). GITHUB_BASE_URL and GITHUB_API_URL point it at GitHub Enterprise or a test stand-in.
httpx is imported by the calls that use it, so a proxyd nobody logs into never loads it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import attrs

LOGIN_SCOPES = "read:user user:email read:org"


class GitHubError(Exception):
    """GitHub refused or could not be reached; the message is safe to show (no secrets)."""


@attrs.define
class GitHubApp:
    client_id: str
    client_secret: str = attrs.field(repr=False)


@attrs.define
class GitHub:
    base_url: str
    api_url: str
    timeout: float = 10.0

    def authorize_url(self, app: GitHubApp, redirect_uri: str, state: str) -> str:
        query = urlencode(
            {
                "client_id": app.client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "scope": LOGIN_SCOPES,
                "allow_signup": "false",
            }
        )
        return f"{self.base_url.rstrip('/')}/login/oauth/authorize?{query}"

    async def exchange(self, app: GitHubApp, code: str, redirect_uri: str) -> str:
        """Trade the callback's code for a GitHub access token."""
        data = await self._post(
            "/login/oauth/access_token",
            {
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
            },
        )
        token = data.get("access_token")
        if not token:
            raise GitHubError(f"GitHub refused the login code ({data.get('error', 'no token')}).")
        return str(token)

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.base_url.rstrip("/") + path,
                    data=form,
                    headers={"Accept": "application/json"},
                )
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GitHubError(f"GitHub could not be reached ({type(exc).__name__}).") from None

    async def user(self, token: str) -> dict[str, Any]:
        """login, id, name, verified emails (primary first) and organization logins."""
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
        }
        base = self.api_url.rstrip("/")
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout, headers=headers) as client:
                user = (await client.get(f"{base}/user")).raise_for_status().json()
                emails = (await client.get(f"{base}/user/emails")).json()
                orgs = (await client.get(f"{base}/user/orgs")).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GitHubError(f"GitHub's API could not be read ({type(exc).__name__}).") from None
        verified = [
            e["email"]
            for e in sorted(
                emails if isinstance(emails, list) else [], key=lambda e: not e.get("primary")
            )
            if isinstance(e, dict) and e.get("verified") and e.get("email")
        ]
        return {
            "login": str(user["login"]),
            "id": user.get("id"),
            "name": user.get("name"),
            "email": verified[0] if verified else None,
            "emails": verified,
            "orgs": [o["login"] for o in orgs if isinstance(o, dict) and o.get("login")]
            if isinstance(orgs, list)
            else [],
        }
