"""Writes of single sign-on: the company's IdP, its email domains, just-in-time members."""

from __future__ import annotations

import base64
import re
from typing import Any

from cryptography import x509
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.credentials import secret_encrypt
from companies.models import Company, Membership, User
from sso import dns_check
from sso.models import JIT_ROLE_CHOICES, TXT_PREFIX, SsoConnection, SsoDomain, SsoKind

# One label: letters, digits, hyphens inside; at least two labels; the last one alphabetic
# (or an IDNA "xn--" label).
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


def sso_domain_clean(value: str) -> str:
    """A bare domain in its ASCII form (``Пример.рф`` → ``xn--e1afmkfd.xn--p1ai``)."""
    domain = value.strip().lower().rstrip(".")
    domain = domain.removeprefix("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValidationError({"domain": _("Enter a domain such as example.com.")}) from exc
    if not _DOMAIN_RE.match(domain):
        raise ValidationError({"domain": _("Enter a domain such as example.com.")})
    return domain


def _certificate_clean(value: str) -> str:
    """The IdP's certificate as base64 DER on one line (what python3-saml expects)."""
    body = re.sub(r"-----(BEGIN|END) CERTIFICATE-----|\s", "", value)
    try:
        x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
    except ValueError as exc:
        raise ValidationError(
            {"saml_x509_cert": _("Paste the IdP's signing certificate (PEM).")}
        ) from exc
    return body


def _metadata_parse(xml: str) -> dict[str, str]:
    """Entity id, sign-in URL and certificate from IdP metadata pasted by an admin."""
    from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

    try:
        idp = OneLogin_Saml2_IdPMetadataParser.parse(xml.encode())["idp"]
    except Exception as exc:
        raise ValidationError({"saml_metadata": _("This is not IdP metadata XML.")}) from exc
    cert = idp.get("x509cert") or next(iter(idp.get("x509certMulti", {}).get("signing", [])), "")
    return {
        "saml_entity_id": idp.get("entityId", ""),
        "saml_sso_url": idp.get("singleSignOnService", {}).get("url", ""),
        "saml_x509_cert": cert,
    }


def _oidc_fields(
    connection: SsoConnection, *, issuer: str, client_id: str, client_secret: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OIDC fields to store, and the errors of the input."""
    from notifications.http_client import UnsafeURL, url_check

    errors: dict[str, Any] = {}
    issuer = issuer.strip().rstrip("/")
    if not issuer:
        errors["oidc_issuer"] = _("Enter the issuer URL of your identity provider.")
    else:
        try:
            # Our server fetches this URL: the same rule as for webhook endpoints.
            url_check(issuer)
        except UnsafeURL as exc:
            errors["oidc_issuer"] = str(exc)
    if not client_id.strip():
        errors["oidc_client_id"] = _("Enter the client ID.")
    if not client_secret and not connection.oidc_client_secret_encrypted:
        errors["oidc_client_secret"] = _("Enter the client secret.")
    fields: dict[str, Any] = {"oidc_issuer": issuer, "oidc_client_id": client_id.strip()}
    if client_secret and not errors:
        fields["oidc_client_secret_encrypted"] = secret_encrypt(client_secret)
    return fields, errors


def _saml_fields(
    *, entity_id: str, sso_url: str, x509_cert: str, metadata: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SAML fields to store (from pasted metadata when given), and the input's errors."""
    errors: dict[str, Any] = {}
    fields = {
        "saml_entity_id": entity_id.strip(),
        "saml_sso_url": sso_url.strip(),
        "saml_x509_cert": x509_cert,
    }
    if metadata.strip():
        fields = _metadata_parse(metadata)
    if not fields["saml_entity_id"]:
        errors["saml_entity_id"] = _("Enter the IdP's entity ID.")
    if not fields["saml_sso_url"]:
        errors["saml_sso_url"] = _("Enter the IdP's sign-in URL.")
    elif not fields["saml_sso_url"].startswith(("https://", "http://")):
        errors["saml_sso_url"] = _("Enter a full URL, starting with https://.")
    if not fields["saml_x509_cert"].strip():
        errors["saml_x509_cert"] = _("Paste the IdP's signing certificate (PEM).")
    else:
        try:
            fields["saml_x509_cert"] = _certificate_clean(fields["saml_x509_cert"])
        except ValidationError as exc:
            errors.update(exc.message_dict)
    return fields, errors


def sso_connection_save(
    *,
    company: Company,
    kind: str,
    enabled: bool,
    default_role: str,
    sso_required: bool,
    oidc_issuer: str = "",
    oidc_client_id: str = "",
    oidc_client_secret: str = "",
    saml_entity_id: str = "",
    saml_sso_url: str = "",
    saml_x509_cert: str = "",
    saml_metadata: str = "",
) -> SsoConnection:
    """Create or change the company's IdP. An empty client secret keeps the stored one."""
    connection = SsoConnection.objects.for_company(company).first() or SsoConnection(
        company=company
    )
    created = connection.pk is None
    before: dict[str, Any] = {} if created else _connection_state(connection)
    if kind not in SsoKind.values:
        raise ValidationError({"kind": _("Choose OpenID Connect or SAML.")})
    if default_role not in dict(JIT_ROLE_CHOICES):
        raise ValidationError({"default_role": _("Choose a role other than owner.")})
    if kind == SsoKind.OIDC:
        fields, errors = _oidc_fields(
            connection,
            issuer=oidc_issuer,
            client_id=oidc_client_id,
            client_secret=oidc_client_secret,
        )
    else:
        fields, errors = _saml_fields(
            entity_id=saml_entity_id,
            sso_url=saml_sso_url,
            x509_cert=saml_x509_cert,
            metadata=saml_metadata,
        )
    if errors:
        raise ValidationError(errors)
    for name, value in fields.items():
        setattr(connection, name, value)
    connection.kind = kind
    connection.enabled = enabled
    connection.default_role = default_role
    connection.sso_required = sso_required
    connection.updated_at = timezone.now()
    after = _connection_state(connection)
    if created:
        # A new connection's entry lists what was set, each as [None, value].
        after = {name: value for name, value in after.items() if value not in ("", None)}
    changes = changes_between(before, after, secret=_SECRET_FIELDS)
    with transaction.atomic():
        connection.save()
        if created or changes:
            audit_record(
                company=company,
                action=_connection_action(created=created, changes=changes),
                target=connection,
                target_label=str(connection.get_kind_display()),
                changes=changes,
            )
    return connection


# What the audit log compares on each save of a connection (not ``updated_at``).
_AUDITED_FIELDS = (
    "kind",
    "enabled",
    "default_role",
    "sso_required",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret_encrypted",
    "saml_entity_id",
    "saml_sso_url",
    "saml_x509_cert",
)
# Only "changed": the client secret is one; the certificate is public, but two PEM blocks in
# an entry say nothing a person reads (the settings page shows the current one).
_SECRET_FIELDS = ("oidc_client_secret", "saml_x509_cert")


def _connection_state(connection: SsoConnection) -> dict[str, Any]:
    """The audited fields, the secret under its form name (its stored value is a cipher)."""
    values = snapshot(connection, _AUDITED_FIELDS)
    values["oidc_client_secret"] = values.pop("oidc_client_secret_encrypted")
    return values


def _connection_action(*, created: bool, changes: dict[str, list[Any]]) -> str:
    if created:
        return AuditAction.SSO_CONNECTION_CREATED
    if "enabled" in changes:
        # Turning sign-on on or off is what a reader looks for; other fields changed with it
        # are in the same entry's changes.
        enabled = changes["enabled"][1]
        return (
            AuditAction.SSO_CONNECTION_ENABLED if enabled else AuditAction.SSO_CONNECTION_DISABLED
        )
    return AuditAction.SSO_CONNECTION_UPDATED


def sso_domain_add(*, company: Company, domain: str) -> SsoDomain:
    domain = sso_domain_clean(domain)
    if SsoDomain.objects.for_company(company).filter(domain=domain).exists():
        raise ValidationError({"domain": _("This domain is already listed.")})
    with transaction.atomic():
        added = SsoDomain.objects.create(company=company, domain=domain)
        audit_record(company=company, action=AuditAction.SSO_DOMAIN_ADDED, target=added)
    return added


def sso_domain_verify(*, company: Company, domain: SsoDomain) -> SsoDomain:
    """Mark the domain verified when its DNS publishes the company's TXT record."""
    assert domain.company_id == company.pk
    if domain.verified_at is not None:
        return domain
    try:
        records = dns_check.txt_records(domain.domain)
    except dns_check.DnsUnavailable as exc:
        raise ValidationError(_("DNS did not answer. Try again in a few minutes.")) from exc
    if f"{TXT_PREFIX}{domain.token}" not in records:
        raise ValidationError(
            _("No TXT record %(record)s was found at %(domain)s yet. DNS changes can take a while.")
            % {"record": domain.txt_record, "domain": domain.domain}
        )
    try:
        with transaction.atomic():
            verified = (
                SsoDomain.objects.for_company(company)
                .filter(pk=domain.pk, verified_at__isnull=True)
                .update(verified_at=timezone.now())
            )
            if verified:
                audit_record(company=company, action=AuditAction.SSO_DOMAIN_VERIFIED, target=domain)
    except IntegrityError as exc:
        raise ValidationError(
            _("%(domain)s is already verified by another company.") % {"domain": domain.domain}
        ) from exc
    domain.refresh_from_db()
    return domain


def sso_domain_remove(*, company: Company, domain: SsoDomain) -> None:
    with transaction.atomic():
        removed, _by_model = SsoDomain.objects.for_company(company).filter(pk=domain.pk).delete()
        if removed:
            audit_record(company=company, action=AuditAction.SSO_DOMAIN_REMOVED, target=domain)


def sso_membership_grant(*, connection: SsoConnection, user: User) -> Membership:
    """Just-in-time membership: the connection's company, with its default role, once.

    An existing member keeps their role (an IdP sign-in never demotes or promotes anyone).
    """
    membership, _created = Membership.objects.for_company(connection.company).get_or_create(
        company=connection.company, user=user, defaults={"role": connection.default_role}
    )
    return membership
