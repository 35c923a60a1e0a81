"""allauth hooks: who may sign up, and what a new user record starts with."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from companies.models import User

# Set at every login: the login page greets "Welcome back" only a browser that has logged in
# before (templates/account/login.html reads it); a first-time visitor is asked to log in.
RETURNING_COOKIE = "nps_returning"
RETURNING_COOKIE_AGE = 400 * 24 * 3600


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is always open: every new user brings their own company."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return True

    def save_user(self, request: HttpRequest, user: Any, form: Form, commit: bool = True) -> User:
        """Remember the interface language the person signed up in (emails use it later)."""
        language = translation.get_language() or settings.LANGUAGE_CODE
        if language in dict(settings.LANGUAGES):
            user.language = language
        saved: User = super().save_user(request, user, form, commit=commit)
        return saved

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        """Log in to the interface language the person chose last, on any device."""
        response: HttpResponse = super().post_login(request, user, **kwargs)
        response.set_cookie(
            RETURNING_COOKIE,
            "1",
            max_age=RETURNING_COOKIE_AGE,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
        )
        if getattr(user, "language", None) in dict(settings.LANGUAGES):
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                user.language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response
