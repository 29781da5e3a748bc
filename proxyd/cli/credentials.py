"""The login `proxyd login` stores: a 0600 file under the user's config directory with the
access and refresh tokens, read when neither --token nor PROXYD_TOKEN is given, and refreshed
with the stored refresh token when the access token is about to expire."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

REFRESH_MARGIN = 60  # refresh a stored login this many seconds before it expires


def login_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "proxyd" / "login.json"


def read_login() -> dict[str, Any] | None:
    try:
        data = json.loads(login_path().read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stored_token() -> str | None:
    """The access token `proxyd login` stored; refreshed first with the stored refresh token when
    it expires within a minute (the new tokens are stored again). None when there is none left."""
    data = read_login()
    if data is None:
        return None
    if data.get("expires_at", 0) > time.time() + REFRESH_MARGIN:
        return data.get("access_token")
    return _refresh(data)


def _refresh(data: dict[str, Any]) -> str | None:
    import httpx

    if not data.get("refresh_token") or not data.get("client_id"):
        return None
    endpoint = data.get("token_endpoint") or f"{data.get('api_url', '')}/token"
    try:
        response = httpx.post(
            endpoint,
            data={
                "grant_type": "refresh_token",
                "refresh_token": data["refresh_token"],
                "client_id": data["client_id"],
            },
            timeout=10,
        )
        answer = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if response.status_code != 200 or "access_token" not in answer:
        return None
    write_login(login_record(data, answer))
    return answer["access_token"]


def claims_of(token: str) -> dict[str, Any]:
    """The payload of one of our JWTs, for display only (never trusted for anything)."""
    import base64

    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def login_record(base: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    claims = claims_of(answer["access_token"])
    return {
        **base,
        "access_token": answer["access_token"],
        "refresh_token": answer.get("refresh_token") or base.get("refresh_token"),
        "scope": answer.get("scope"),
        "user": claims.get("sub", base.get("user")),
        "expires_at": time.time() + int(answer.get("expires_in", 0)),
    }


def write_login(data: dict[str, Any]) -> Path:
    path = login_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.chmod(path, 0o600)
    return path
