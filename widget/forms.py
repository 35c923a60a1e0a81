"""The widget settings form on a survey's widget page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from widget.models import WidgetSettings

LINE_FIELDS = ("allowed_origins", "url_contains", "url_not_contains")


class WidgetSettingsForm(forms.ModelForm):
    allowed_origins = forms.CharField(
        label=_("Sites allowed to show it"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One origin a line, like https://app.example.com. Other sites get nothing."),
    )
    url_contains = forms.CharField(
        label=_("Only on pages whose address contains"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One text a line; empty: every page."),
    )
    url_not_contains = forms.CharField(
        label=_("Never on pages whose address contains"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One text a line."),
    )

    class Meta:
        model = WidgetSettings
        fields = (
            "enabled",
            "allowed_origins",
            "sample_percent",
            "delay_seconds",
            "min_days_since_created",
            "url_contains",
            "url_not_contains",
            "dismissal_cooldown_days",
            "anonymous_cooldown_days",
            "verify_identity",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.instance.pk:
            for name in LINE_FIELDS:
                self.initial[name] = "\n".join(getattr(self.instance, name) or [])

    def service_fields(self) -> dict[str, Any]:
        fields = dict(self.cleaned_data)
        for name in LINE_FIELDS:
            fields[name] = str(fields.get(name) or "").splitlines()
        return fields

    def _post_clean(self) -> None:
        # The service validates and saves (lists from lines): skip the model's own pass.
        return
