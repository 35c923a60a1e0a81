from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm
from django import forms
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from companies.models import TIME_ZONE_CHOICES, Company, Industry, User
from companies.services import company_create


class CompanySignupForm(SignupForm):
    """Sign-up creates the user and their company (as owner) in one transaction."""

    company_name = forms.CharField(label=_("Company name"), max_length=120)
    industry = forms.ChoiceField(label=_("Industry"), choices=Industry.choices)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES, initial="UTC")

    field_order = ["email", "password1", "password2", "company_name", "industry", "time_zone"]

    def save(self, request: HttpRequest) -> User:
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
        ]

    def clean_country(self) -> str:
        value: str = self.cleaned_data["country"].strip().upper()
        if value and (len(value) != 2 or not value.isalpha()):
            raise forms.ValidationError(_("Use a two-letter country code, e.g. KZ or US."))
        return value

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["country"].widget.attrs.update({"maxlength": 2, "placeholder": "KZ"})
