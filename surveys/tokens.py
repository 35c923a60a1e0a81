"""Answer-link tokens: 256-bit, derived from a stored nonce and the server's secret.

The database keeps the nonce and the SHA-256 of the token. Links are looked up by that hash;
the token can be derived again (for a reminder) only with ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from django.conf import settings

_CONTEXT = b"nps_saas/invitation-token/v1"


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def token_for(nonce: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode() + _CONTEXT, nonce.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    """Cheap shape check before any database lookup (43 URL-safe base64 characters)."""
    return len(value) == 43 and all(c.isalnum() or c in "-_" for c in value)
