"""Sign-in forms that send the people of an "SSO required" domain to their IdP, and the
company's single sign-on settings."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import ResetPasswordForm
from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from companies.forms import AppLoginForm, CompanySignupForm
from sso.models import JIT_ROLE_CHOICES, SsoKind
from sso.selectors import email_domain, sso_required_for_email


def sso_required_message(email: str) -> SafeString:
    return format_html(
        str(
            _(
                "People at {domain} sign in with single sign-on. "
                '<a href="{url}">Sign in with SSO</a>.'
            )
        ),
        domain=email_domain(email),
        url=f"{reverse('sso_start')}?{urlencode({'email': email})}",
    )


def refuse_if_sso_required(email: str) -> None:
    if email and sso_required_for_email(email=email) is not None:
        raise ValidationError(sso_required_message(email), code="sso_required")


class SsoLoginForm(AppLoginForm):
    """Password sign-in, refused for an email whose company requires single sign-on."""

    def clean(self) -> dict[str, Any]:
        refuse_if_sso_required(str(self.cleaned_data.get("login") or ""))
        cleaned: dict[str, Any] = super().clean()
        return cleaned


class SsoResetPasswordForm(ResetPasswordForm):
    """No password to reset where the company requires single sign-on."""

    def clean_email(self) -> str:
        email: str = super().clean_email()
        refuse_if_sso_required(email)
        return email


class SsoSignupForm(CompanySignupForm):
    """No password account for an email whose company requires single sign-on."""

    def clean_email(self) -> str:
        email: str = super().clean_email()
        refuse_if_sso_required(email)
        return email


class SsoStartForm(forms.Form):
    """The login page's "Sign in with SSO": a work email, or the company's ID."""

    identifier = forms.CharField(
        label=_("Work email or company ID"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class SsoConnectionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Protocol"), choices=SsoKind.choices)
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    oidc_issuer = forms.CharField(
        label=_("Issuer URL"),
        max_length=500,
        required=False,
        help_text=_(
            "e.g. https://login.example.com/realms/staff "
            "(its /.well-known/openid-configuration is read)."
        ),
    )
    oidc_client_id = forms.CharField(label=_("Client ID"), max_length=255, required=False)
    oidc_client_secret = forms.CharField(
        label=_("Client secret"),
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted and never shown again. Leave empty to keep the saved one."),
    )
    saml_metadata = forms.CharField(
        label=_("IdP metadata XML"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Paste it to fill the three fields below from it."),
    )
    saml_entity_id = forms.CharField(label=_("IdP entity ID"), max_length=500, required=False)
    saml_sso_url = forms.CharField(label=_("IdP sign-in URL"), max_length=500, required=False)
    saml_x509_cert = forms.CharField(
        label=_("IdP certificate"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("The certificate that signs the IdP's responses (PEM)."),
    )
    default_role = forms.ChoiceField(
        label=_("Role of new members"),
        choices=JIT_ROLE_CHOICES,
        help_text=_(
            "Someone from a verified domain who signs in for the first time joins with this role."
        ),
    )
    sso_required = forms.BooleanField(
        label=_("Require single sign-on"),
        required=False,
        help_text=_(
            "People with an email in a verified domain cannot sign in, sign up or reset a "
            "password with a password."
        ),
    )


class SsoDomainForm(forms.Form):
    domain = forms.CharField(label=_("Email domain"), max_length=253)
