"""Secrets a company gives us (its own Twilio auth token), encrypted at rest.

Fernet (``cryptography``: AES-128-CBC with HMAC-SHA256) with the key from settings
(``CREDENTIALS_KEY``). Only the ciphertext is stored; the plain value exists in memory while
a message is sent or a webhook checked, and is never rendered, logged or returned by the API.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialUnreadable(Exception):
    """The stored secret cannot be decrypted (the key changed): the company must re-enter it."""


def _fernet() -> Fernet:
    if not settings.CREDENTIALS_KEY:
        raise ImproperlyConfigured("CREDENTIALS_KEY must be set to store a company's secrets")
    return Fernet(settings.CREDENTIALS_KEY.encode())


def secret_encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialUnreadable("the stored secret cannot be decrypted") from exc
