"""Talking to the management API: where it is (`resolve_api_url`), which token to send
(`resolve_token`), and `ApiClient`, which posts one GraphQL document and returns its data or
raises a CliError worded for people.
"""

from __future__ import annotations

import os
from typing import Any

from proxyd.cli.errors import CliError
from proxyd.config import load_settings

TOKEN_HINT = (
    "no API token: create one with `proxyd token issue --scope admin`, then "
    "export PROXYD_TOKEN=<token> (or pass --token)."
)


def resolve_api_url(explicit: str | None = None) -> str:
    """The API base URL: --api-url, else $PROXYD_API_URL, else the local API_PORT setting."""
    url = (explicit or os.environ.get("PROXYD_API_URL") or "").strip()
    if not url:
        return f"http://127.0.0.1:{load_settings().api_port}"
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the API URL must start with http:// or https://, not {url!r}.", 2)
    url = url.rstrip("/")
    return url.removesuffix("/graphql")


def resolve_token(explicit: str | None = None) -> str:
    """The bearer token: --token, else $PROXYD_TOKEN; raises CliError (with a hint) when none.

    This is the single place to add further sources, such as a stored login file.
    """
    token = (explicit or os.environ.get("PROXYD_TOKEN") or "").strip()
    if not token:
        from proxyd.cli.credentials import stored_token  # the token `proxyd login` stored

        token = (stored_token() or "").strip()
    if not token:
        raise CliError(TOKEN_HINT)
    return token


def describe_errors(errors: list[Any]) -> str:
    """One line per GraphQL error: its message and, when present, its code."""
    lines = []
    for error in errors:
        error = error if isinstance(error, dict) else {"message": str(error)}
        message = str(error.get("message") or "unknown error").rstrip()
        code = (error.get("extensions") or {}).get("code")
        if code:
            message = f"{message.rstrip('.')} ({code})."
        if code == "UNAUTHENTICATED":
            message += " Get a new token with `proxyd token issue --scope admin`."
        lines.append(message)
    return "\n".join(lines)


class ApiClient:
    """A synchronous GraphQL-over-HTTP client for one proxyd API."""

    def __init__(self, api_url: str, token: str, timeout: float = 30.0) -> None:
        self.api_url = api_url
        self._token = token
        self.timeout = timeout

    def execute(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one query or mutation; return its `data`, or raise CliError."""
        import httpx  # imported here: it is slow to import and `serve` does not need it

        try:
            response = httpx.post(
                f"{self.api_url}/graphql",
                json={"query": document, "variables": variables or {}},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout,
                # Certificates are verified for https:// API URLs; for http:// there is no TLS,
                # and skipping the CA bundle load saves ~0.1 s per command.
                verify=self.api_url.startswith("https://"),
            )
        except httpx.TimeoutException:
            raise CliError(
                f"the proxyd API at {self.api_url} did not answer within {self.timeout:g} s."
            ) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.NetworkError):
            raise CliError(
                f"cannot reach the proxyd API at {self.api_url}: is `proxyd serve` running?"
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to the proxyd API at {self.api_url} failed: {exc}.") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not ("data" in body or "errors" in body):
            raise CliError(
                f"{self.api_url} answered HTTP {response.status_code} without a GraphQL "
                "response: is it the proxyd API (check --api-url)?"
            )
        if body.get("errors"):
            raise CliError(describe_errors(body["errors"]))
        return body.get("data") or {}
