"""PKCE (RFC 7636), S256 only: the challenge of a verifier."""

from __future__ import annotations

import base64
import hashlib


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
