from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is always open: every new user brings their own company."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return True
