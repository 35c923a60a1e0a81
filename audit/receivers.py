"""Sign-ins into the audit log: adapters from Django's auth signals (allauth logs in and
authenticates through them) to ``audit.services``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from audit.services import audit_sign_in, audit_sign_in_failed
from companies.models import User


@receiver(user_logged_in, dispatch_uid="audit_signed_in")
def on_signed_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    audit_sign_in(user=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def on_sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    email = credentials.get("email") or credentials.get("username") or ""
    audit_sign_in_failed(email=str(email), request=request)
