"""Forms of the companies app: sign-up (user + company in one step) and company settings."""

from __future__ import annotations

import json
from typing import Any

from allauth.account.forms import LoginForm, SignupForm
from allauth.mfa.webauthn.forms import AddWebAuthnForm
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from companies.models import (
    RETENTION_MAX_MONTHS,
    RETENTION_MIN_MONTHS,
    Company,
    Industry,
    User,
)
from companies.services import (
    WHATSAPP_DEFAULT_VARIABLES,
    company_create,
    country_code_clean,
    whatsapp_variables_text,
)
from companies.zones import zone_aliases, zone_choices


def _with_placeholder(choices: list[tuple[str, Any]], label: Any) -> list[tuple[str, Any]]:
    """Prepend an empty "choose…" option, so a required select starts unanswered."""
    return [("", label), *choices]


class AppLoginForm(LoginForm):
    """allauth's login form with labels that read well next to visible field labels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].widget.attrs.update(
            {"placeholder": _("you@company.com"), "autocomplete": "email", "autofocus": True}
        )
        self.fields["password"].widget.attrs["placeholder"] = ""
        # The template links "Forgot password?" beside the label instead.
        self.fields["password"].help_text = ""
        if "remember" in self.fields:
            self.fields["remember"].label = _("Keep me logged in")


class PasskeyAddForm(AddWebAuthnForm):
    """allauth's form for adding a passkey or security key, with a label of our own for the
    name (allauth leaves it to Django's untranslated default)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].label = _("Key name")
        self.fields["name"].help_text = _("To tell your keys apart, e.g. “Work laptop”.")


class CompanySignupForm(SignupForm):
    """Sign-up creates the user and their company (as owner) in one transaction.

    allauth's own fields (email, password1, password2) are validated by allauth; the company
    fields are validated here, before anything is written, so a bad company field leaves no
    half-created user behind.
    """

    company_name = forms.CharField(label=_("Company name"), max_length=120)
    industry = forms.ChoiceField(
        label=_("Industry"),
        choices=_with_placeholder(list(Industry.choices), _("Choose…")),
        help_text=_("Used to compare your NPS with published benchmarks."),
    )
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=zone_choices,
        initial="UTC",
        help_text=_("Reports count days in this time zone."),
    )

    field_order = ["email", "password1", "password2", "company_name", "industry", "time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Visible labels carry the meaning; placeholders only show an example.
        self.fields["email"].widget.attrs.update(
            {"placeholder": _("you@company.com"), "autocomplete": "email"}
        )
        if "password1" in self.fields:
            self.fields["password1"].help_text = _(
                "At least 8 characters. Avoid common words and numbers only."
            )
            self.fields["password1"].widget.attrs["placeholder"] = ""
        if "password2" in self.fields:
            self.fields["password2"].label = _("Repeat password")
            self.fields["password2"].widget.attrs["placeholder"] = ""
        self.fields["company_name"].widget.attrs.update(
            {"placeholder": _("Acme Coffee"), "autocomplete": "organization"}
        )
        self.fields["time_zone"].widget.attrs["data-guess-timezone"] = "1"
        self.fields["time_zone"].widget.attrs["data-zone-aliases"] = json.dumps(
            zone_aliases(), separators=(",", ":")
        )

    def clean_company_name(self) -> str:
        name: str = self.cleaned_data["company_name"].strip()
        if not name:
            raise ValidationError(_("Enter the company name."))
        return name

    def save(self, request: HttpRequest) -> User:
        # allauth writes the user and their EmailAddress; the company joins the same transaction
        # so that a failure in either leaves nothing behind.
        with transaction.atomic():
            user: User = super().save(request)
            company_create(
                name=self.cleaned_data["company_name"],
                owner=user,
                industry=self.cleaned_data["industry"],
                time_zone=self.cleaned_data["time_zone"],
            )
        return user


class CompanySettingsForm(forms.ModelForm):
    """Company settings, edited by admins and owners. Saved through ``company_update``."""

    class Meta:
        model = Company
        fields = [
            "name",
            "industry",
            "country",
            "time_zone",
            "default_language",
            "sender_name",
            "reply_to",
            "retention_months",
        ]
        help_texts = {
            "country": _("Two-letter ISO code, e.g. KZ, RU or US."),
            "time_zone": _("Reports count days in this time zone."),
            "default_language": _("Surveys use it when a contact has no language of their own."),
            "sender_name": _("Shown as the sender of survey emails. Defaults to the company name."),
            "reply_to": _("Where replies to survey emails go. Leave empty to not accept replies."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["country"].widget.attrs.update(
            {"maxlength": 2, "placeholder": "KZ", "autocomplete": "country"}
        )
        self.fields["reply_to"].widget.attrs["placeholder"] = _("support@company.com")
        # Set here, not in Meta: the bounds go into the text in the reader's language.
        retention = self.fields["retention_months"]
        retention.help_text = gettext(
            "Between %(min)d and %(max)d months. Leave empty to keep everything."
        ) % {"min": RETENTION_MIN_MONTHS, "max": RETENTION_MAX_MONTHS}
        retention.widget.attrs.update(
            {"min": RETENTION_MIN_MONTHS, "max": RETENTION_MAX_MONTHS, "placeholder": "24"}
        )
        # Grouped by region, labelled with the city and UTC offset; the stored zone stays
        # selectable even when it is not in the list (an older or deprecated name).
        current = self.instance.time_zone if self.instance else ""
        zone = self.fields["time_zone"]
        assert isinstance(zone, forms.ChoiceField)
        zone.choices = zone_choices(current=current)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Enter the company name."))
        return name

    def clean_country(self) -> str:
        try:
            return country_code_clean(self.cleaned_data["country"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["country"]) from exc


class CompanySecurityForm(forms.Form):
    """Whether the company requires two-factor sign-in of its members."""

    require_mfa = forms.BooleanField(
        label=_("Require two-factor sign-in for members"),
        required=False,
        help_text=_(
            "Members without an authenticator app or a passkey are asked to set one up before "
            "they can open this company's pages. API keys are not affected."
        ),
    )


class CompanySmsSettingsForm(forms.ModelForm):
    """SMS and WhatsApp sender, throughput and quiet hours. Saved through
    ``company_sms_update``, which checks the sender against its kind."""

    class Meta:
        model = Company
        fields = [
            "sms_sender_kind",
            "sms_sender",
            "sms_rate_per_second",
            "whatsapp_sender",
            "quiet_hours_start",
            "quiet_hours_end",
        ]
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        help_texts = {
            "sms_sender": _(
                "A Twilio Messaging Service SID (MG…), a phone number in international "
                "format (+1…), or a short code."
            ),
            "sms_rate_per_second": _(
                "Leave empty for Twilio's default for the sender type: 1 per second for a "
                "phone number, 3 toll-free, 100 for a short code."
            ),
            "whatsapp_sender": _("Your WhatsApp-enabled Twilio number, e.g. +14155238886."),
            "quiet_hours_start": _("In the recipient's local time."),
            "quiet_hours_end": _("Messages due outside this window wait for the next one."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        templates = self.instance.whatsapp_templates or {}
        for code, label in settings.SURVEY_LANGUAGES:
            self.fields[f"whatsapp_template_{code}"] = forms.CharField(
                label=_("WhatsApp template (%(language)s)") % {"language": label},
                max_length=34,
                required=False,
                initial=templates.get(code, ""),
                help_text=_("Content SID (HX…) of an approved template."),
            )

        self.fields["whatsapp_variables"] = forms.CharField(
            label=_("Template variables"),
            max_length=200,
            required=False,
            initial=whatsapp_variables_text(
                self.instance.whatsapp_variables or WHATSAPP_DEFAULT_VARIABLES
            ),
            help_text=_(
                "What each numbered variable of your templates carries, e.g. "
                "1=name, 2=company, 3=link. Values: name, first_name, company, survey, link."
            ),
        )

    @property
    def template_fields(self) -> list[forms.BoundField]:
        languages = [self[f"whatsapp_template_{code}"] for code, _l in settings.SURVEY_LANGUAGES]
        return [*languages, self["whatsapp_variables"]]

    def changes(self) -> dict[str, Any]:
        """The changed model fields, with the per-language templates as one mapping."""
        changed = {
            name: self.cleaned_data[name] for name in self.changed_data if name in self.Meta.fields
        }
        templates = {
            code: self.cleaned_data.get(f"whatsapp_template_{code}", "")
            for code, _label in settings.SURVEY_LANGUAGES
        }
        if {k: v for k, v in templates.items() if v} != (self.instance.whatsapp_templates or {}):
            changed["whatsapp_templates"] = templates
        if "whatsapp_variables" in self.changed_data:
            changed["whatsapp_variables"] = self.cleaned_data["whatsapp_variables"]
        return changed


class CompanyTwilioAccountForm(forms.Form):
    """The company's own Twilio account. The auth token is write-only: never rendered back."""

    twilio_account_sid = forms.CharField(
        label=_("Account SID"),
        max_length=34,
        required=False,
        help_text=_("Leave empty to send through our Twilio account."),
    )
    twilio_auth_token = forms.CharField(
        label=_("Auth token"),
        max_length=64,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted and never shown again. Leave empty to keep the saved one."),
    )
