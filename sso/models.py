"""A company's single sign-on: its identity provider and the email domains it answers for.

Nothing here is global: allauth's apps are built per request from these rows
(``sso.adapters.SsoSocialAccountAdapter.list_apps``), so one company's IdP can never sign
anyone in to another company.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import Company, Role, new_public_id
from companies.tenancy import TenantModel


class SsoKind(models.TextChoices):
    OIDC = "oidc", _("OpenID Connect")
    SAML = "saml", _("SAML 2.0")


# Just-in-time members never become owners: ownership is handed over by a person.
JIT_ROLE_CHOICES = [(role.value, role.label) for role in Role if role != Role.OWNER]


def new_verification_token() -> str:
    return secrets.token_hex(16)


class SsoConnection(TenantModel):
    """The company's identity provider (one per company)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    # Names the connection in allauth's URLs (/accounts/oidc/sso-<id>/…, /accounts/saml/…).
    public_id = models.CharField(max_length=32, default=new_public_id, editable=False, unique=True)
    kind = models.CharField(_("protocol"), max_length=8, choices=SsoKind.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    oidc_issuer = models.URLField(_("issuer URL"), max_length=500, blank=True)
    oidc_client_id = models.CharField(_("client ID"), max_length=255, blank=True)
    # Encrypted like every secret a company gives us (companies/credentials.py).
    oidc_client_secret_encrypted = models.TextField(blank=True, editable=False)
    saml_entity_id = models.CharField(_("IdP entity ID"), max_length=500, blank=True)
    saml_sso_url = models.URLField(_("IdP sign-in URL"), max_length=500, blank=True)
    saml_x509_cert = models.TextField(_("IdP certificate"), blank=True)
    default_role = models.CharField(
        _("role of new members"), max_length=16, choices=JIT_ROLE_CHOICES, default=Role.VIEWER
    )
    sso_required = models.BooleanField(_("require single sign-on"), default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company"], name="ssoconnection_one_per_company"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {self.company_id}"


class SsoDomain(TenantModel):
    """An email domain the company claims; it counts only once verified by DNS."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    domain = models.CharField(_("domain"), max_length=253)
    # Published by the company in a TXT record; not a secret, but unguessable, so a company
    # cannot claim a domain whose DNS it does not control.
    token = models.CharField(max_length=64, default=new_verification_token, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "domain"], name="ssodomain_unique_domain"),
            models.UniqueConstraint(fields=["company", "public_id"], name="ssodomain_public_id"),
            # A verified domain belongs to one company: the sign-in page routes by it.
            models.UniqueConstraint(
                fields=["domain"],
                name="ssodomain_verified_once",
                condition=models.Q(verified_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def txt_record(self) -> str:
        return f"{TXT_PREFIX}{self.token}"


TXT_PREFIX = "nps-saas-verification="
