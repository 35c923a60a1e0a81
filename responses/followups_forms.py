"""Forms of the inbox: alert rules (admins), the inbox settings, and the follow-up actions."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from companies.models import Company, Membership, Role
from notifications.slack import slack_url_validate
from responses.alerts import EMAIL_ROLES, MAX_ADDRESSES, MAX_WORDS
from responses.models import AlertRule, Category, FollowupStatus, ResolutionReason
from surveys.models import Survey

_SPLIT = re.compile(r"[,;\n]+")


def _split(value: str) -> list[str]:
    return [part.strip() for part in _SPLIT.split(value or "") if part.strip()]


class AlertRuleForm(forms.Form):
    """An alert rule; empty conditions match everything (see AlertRule)."""

    name = forms.CharField(label=_("Name"), max_length=120)
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    survey = forms.ChoiceField(label=_("Survey"), required=False)
    category = forms.ChoiceField(
        label=_("Category"), required=False, choices=[("", _("Any")), *Category.choices]
    )
    score_min = forms.IntegerField(
        label=_("Lowest score"), required=False, min_value=0, max_value=10
    )
    score_max = forms.IntegerField(
        label=_("Highest score"), required=False, min_value=0, max_value=10
    )
    words = forms.CharField(
        label=_("Comment contains any of"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Words or phrases separated by commas or lines; upper/lower case and ё/е do not "
            "matter. End a word with * to match its beginning (refund* matches refunded)."
        ),
    )
    property_key = forms.CharField(label=_("Contact property"), required=False, max_length=64)
    property_value = forms.CharField(label=_("equals"), required=False, max_length=255)
    first_response_only = forms.BooleanField(
        label=_("Only the first response of a contact"), required=False
    )
    email_roles = forms.MultipleChoiceField(
        label=_("Email members with these roles"),
        required=False,
        choices=[(role.value, role.label) for role in EMAIL_ROLES],
        widget=forms.CheckboxSelectMultiple,
    )
    email_member_ids = forms.MultipleChoiceField(
        label=_("Email these members"), required=False, widget=forms.CheckboxSelectMultiple
    )
    email_addresses = forms.CharField(
        label=_("Email these addresses"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Separated by commas or lines."),
    )
    create_followup = forms.BooleanField(
        label=_("Create a follow-up in the inbox"), required=False, initial=True
    )
    notify_slack = forms.BooleanField(label=_("Post to Slack"), required=False)
    slack_webhook_url = forms.URLField(
        label=_("Slack incoming-webhook URL"), required=False, assume_scheme="https"
    )
    notify_webhook = forms.BooleanField(label=_("Send an outbound webhook event"), required=False)

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company
        self.surveys = {
            s.public_id: s for s in Survey.objects.for_company(company).order_by("name", "id")
        }
        self.fields["survey"].choices = [  # type: ignore[attr-defined]
            ("", _("All surveys")),
            *((pid, s.name) for pid, s in self.surveys.items()),
        ]
        members = (
            Membership.objects.for_company(company).select_related("user").order_by("user__email")
        )
        self.fields["email_member_ids"].choices = [  # type: ignore[attr-defined]
            (m.public_id, f"{m.user} ({m.get_role_display()})") for m in members
        ]

    @classmethod
    def initial_for(cls, rule: AlertRule) -> dict[str, Any]:
        return {
            "name": rule.display_name,
            "enabled": rule.enabled,
            "survey": rule.survey.public_id if rule.survey else "",
            "category": rule.category,
            "score_min": rule.score_min,
            "score_max": rule.score_max,
            "words": ", ".join(rule.words or []),
            "property_key": rule.property_key,
            "property_value": rule.property_value,
            "first_response_only": rule.first_response_only,
            "email_roles": rule.email_roles,
            "email_member_ids": rule.email_member_ids,
            "email_addresses": ", ".join(rule.email_addresses or []),
            "create_followup": rule.create_followup,
            "notify_slack": rule.notify_slack,
            "slack_webhook_url": rule.slack_webhook_url,
            "notify_webhook": rule.notify_webhook,
        }

    def clean_words(self) -> list[str]:
        words = _split(self.cleaned_data["words"])
        if len(words) > MAX_WORDS:
            raise ValidationError(_("At most %(n)d words.") % {"n": MAX_WORDS})
        return words

    def clean_email_addresses(self) -> list[str]:
        addresses = [a.lower() for a in _split(self.cleaned_data["email_addresses"])]
        if len(addresses) > MAX_ADDRESSES:
            raise ValidationError(_("At most %(n)d addresses.") % {"n": MAX_ADDRESSES})
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError as err:
                raise ValidationError(
                    _("%(address)s is not an email address.") % {"address": address}
                ) from err
        return addresses

    def clean_slack_webhook_url(self) -> str:
        url: str = self.cleaned_data["slack_webhook_url"]
        if url:
            slack_url_validate(url)  # https, and an address the hardened client may post to
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", _("The highest score is below the lowest."))
        if data.get("property_key") and not data.get("property_value"):
            self.add_error("property_value", _("Say which value the property must have."))
        if data.get("notify_slack") and not data.get("slack_webhook_url"):
            self.add_error("slack_webhook_url", _("Give the Slack webhook URL."))
        return data

    def rule_fields(self) -> dict[str, Any]:
        """The cleaned values as AlertRule fields."""
        data = dict(self.cleaned_data)
        data["survey"] = self.surveys.get(data.pop("survey") or "")
        return data


class InboxSettingsForm(forms.Form):
    sla_hours = forms.IntegerField(
        label=_("Answer within (hours)"),
        required=False,
        min_value=1,
        max_value=24 * 30,
    )
    round_robin = forms.BooleanField(
        label=_("Assign new follow-ups round-robin to agents"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sla_hours"].help_text = _(
            "Empty: the default of this installation (%(hours)d hours)."
        ) % {"hours": settings.FOLLOWUP_SLA_HOURS}


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=FollowupStatus.choices)
    resolution = forms.ChoiceField(
        label=_("Resolution"),
        required=False,
        choices=[("", "—"), *ResolutionReason.choices],
    )


class NoteForm(forms.Form):
    body = forms.CharField(label=_("Internal note"), widget=forms.Textarea(attrs={"rows": 3}))


class ReplyForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = forms.CharField(
        label=_("Message to the customer"),
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


ASSIGNABLE_ROLES = (Role.AGENT, Role.MANAGER, Role.ADMIN, Role.OWNER)
