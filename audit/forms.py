"""The audit log page's filters (GET). Days are the company's days, like the dashboard's."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from audit.models import TARGET_TYPES, AuditAction
from audit.selectors import AuditFilters
from companies.models import ApiKey, Company, Membership
from companies.zones import company_zone

SYSTEM_ACTOR = "system"


def _actor_choices(company: Company) -> list[tuple[str, object]]:
    """Members (by their public id) and API keys (by theirs): two queries."""
    members = Membership.objects.for_company(company).select_related("user").order_by("user__email")
    keys = ApiKey.objects.for_company(company).order_by("name", "id")
    return [
        ("", _("Anyone")),
        *((f"m:{m.public_id}", m.user.email) for m in members),
        *((f"k:{k.public_id}", f"{k.name} (nps_{k.prefix}_…)") for k in keys),
        (SYSTEM_ACTOR, _("System")),
    ]


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), required=False)
    actor = forms.ChoiceField(label=_("Who"), required=False)
    target_type = forms.ChoiceField(label=_("Object"), required=False)
    since = forms.DateField(
        label=pgettext_lazy("date range", "From"),
        required=False,
        widget=forms.DateInput({"type": "date"}),
    )
    until = forms.DateField(
        label=pgettext_lazy("date range", "To"),
        required=False,
        widget=forms.DateInput({"type": "date"}),
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company
        self._members: dict[str, int] = {}
        self._keys: dict[str, int] = {}
        self.fields["action"].choices = [("", _("Any action")), *AuditAction.choices]  # type: ignore[attr-defined]
        self.fields["target_type"].choices = [("", _("Anything")), *TARGET_TYPES.items()]  # type: ignore[attr-defined]
        self.fields["actor"].choices = _actor_choices(company)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", _("The end date is before the start date."))
        return data

    def filters(self) -> AuditFilters:
        """The valid filters (an invalid one is left out; the form shows its error)."""
        data = self.cleaned_data if self.is_bound and hasattr(self, "cleaned_data") else {}
        zone = company_zone(self.company)

        def day_start(day: datetime.date | None) -> datetime.datetime | None:
            return None if day is None else datetime.datetime.combine(day, datetime.time(), zone)

        actor = data.get("actor") or ""
        kind, _sep, public_id = actor.partition(":")
        user_id = key_id = None
        if kind == "m":
            user_id = (
                Membership.objects.for_company(self.company)
                .filter(public_id=public_id)
                .values_list("user_id", flat=True)
                .first()
            )
        elif kind == "k":
            key_id = (
                ApiKey.objects.for_company(self.company)
                .filter(public_id=public_id)
                .values_list("pk", flat=True)
                .first()
            )
        until = data.get("until") if "until" not in self.errors else None
        return AuditFilters(
            action=data.get("action") or "",
            actor_user_id=user_id,
            actor_api_key_id=key_id,
            system_only=actor == SYSTEM_ACTOR,
            target_type=data.get("target_type") or "",
            since=day_start(data.get("since")),
            until=day_start(until + datetime.timedelta(days=1)) if until else None,
        )
