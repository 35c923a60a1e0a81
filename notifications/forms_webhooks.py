"""The form of an outbound webhook endpoint (admins)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from notifications.http_client import UnsafeURL, url_check
from notifications.webhooks_models import WebhookEventType


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label=_("Endpoint URL"),
        max_length=2000,
        assume_scheme="https",
        help_text=_("We POST signed JSON events here (Standard Webhooks)."),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event.")},
    )

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            url_check(url)  # the hardened client's own checks: scheme, address, resolvable
        except UnsafeURL as err:
            raise ValidationError(str(err)) from err
        return url

    @classmethod
    def initial_for(cls, endpoint: Any) -> dict[str, Any]:
        return {
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": list(endpoint.event_types or []),
        }
