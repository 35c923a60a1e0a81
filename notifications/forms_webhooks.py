"""The form of an outbound webhook endpoint (admins)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from notifications.http_client import UnsafeURL, url_check
from notifications.webhooks import SIGNING_KEY_MAX
from notifications.webhooks_models import PayloadFormat, WebhookEventType


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label=_("Endpoint URL"),
        max_length=2000,
        assume_scheme="https",
        help_text=_("We POST signed JSON events here."),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event.")},
    )
    payload_format = forms.ChoiceField(
        label=_("Payload format"),
        choices=PayloadFormat.choices,
        initial=PayloadFormat.STANDARD,
        required=False,  # not sent: Standard Webhooks for a new endpoint, unchanged for one
        widget=forms.RadioSelect,
        help_text=_(
            "Delighted: the body and the X-Delighted-Webhook-Signature header Delighted sent, "
            "so that a receiver written for Delighted keeps working (responses created or "
            "changed and unsubscribes only)."
        ),
    )
    signing_key = forms.CharField(
        label=_("Signing key (Delighted format only)"),
        max_length=SIGNING_KEY_MAX,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "Optional: paste the key your receiver verifies signatures with (Delighted signed "
            "with your Delighted API key). Empty: a new endpoint gets a generated secret, an "
            "existing one keeps its own."
        ),
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
            "payload_format": endpoint.payload_format,
        }
