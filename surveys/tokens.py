"""Answer-link tokens: 256-bit, derived from a stored nonce and the server's secret.

The database keeps the nonce and the SHA-256 of the token. Links are looked up by that hash;
the token can be derived again (for a reminder) only with ``SECRET_KEY``.

Text messages carry a short token instead (``short_token_for``: 128 bits, 22 characters, the
design's minimum), derived the same way under another context and looked up by its own hash:
every character of an SMS counts, and a 43-character token can push a text into a second
segment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from django.conf import settings

_CONTEXT = b"nps_saas/invitation-token/v1"
_SHORT_CONTEXT = b"nps_saas/invitation-short-token/v1"
TOKEN_LENGTH = 43
SHORT_TOKEN_LENGTH = 22


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def token_for(nonce: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode() + _CONTEXT, nonce.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def short_token_for(nonce: str) -> str:
    """The 128-bit token of the same invitation for text messages (see the docstring)."""
    digest = hmac.new(
        settings.SECRET_KEY.encode() + _SHORT_CONTEXT, nonce.encode(), hashlib.sha256
    ).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    """Cheap shape check before any database lookup (43 or 22 URL-safe base64 characters)."""
    return len(value) in (TOKEN_LENGTH, SHORT_TOKEN_LENGTH) and all(
        c.isalnum() or c in "-_" for c in value
    )
