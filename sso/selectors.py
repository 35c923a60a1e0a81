"""Reads of single sign-on: a company's setup, and which company answers for an email."""

from __future__ import annotations

from companies import rls
from companies.models import Company
from sso.models import SsoConnection, SsoDomain


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower().rstrip(".")


def sso_connection_get(*, company: Company) -> SsoConnection | None:
    return SsoConnection.objects.for_company(company).first()


def sso_domains_list(*, company: Company) -> list[SsoDomain]:
    return list(SsoDomain.objects.for_company(company).order_by("domain"))


def sso_domain_get(*, company: Company, public_id: str) -> SsoDomain | None:
    return SsoDomain.objects.for_company(company).filter(public_id=public_id).first()


def sso_verified_domains(*, company: Company) -> set[str]:
    rows = SsoDomain.objects.for_company(company).filter(verified_at__isnull=False)
    return set(rows.values_list("domain", flat=True))


def sso_connection_by_public_id(*, public_id: str) -> SsoConnection | None:
    """The enabled connection named in allauth's URLs (no company yet: it comes from here).

    A choke point: what follows in the request sees that company's rows (row-level security).
    """
    with rls.lookup(reason="allauth names the connection, not the company") as found:
        connection = (
            SsoConnection.objects.unscoped(reason="allauth names the connection, not the company")
            .select_related("company")
            .filter(public_id=public_id, enabled=True)
            .first()
        )
        if connection is not None:
            found.found(connection.company_id)
    return connection


def sso_connection_for_email(*, email: str) -> SsoConnection | None:
    """The enabled connection of the company that verified ``email``'s domain, if any."""
    domain = email_domain(email)
    if not domain:
        return None
    with rls.lookup(reason="sign-in: which company verified this email domain") as found:
        owner = (
            SsoDomain.objects.unscoped(reason="sign-in: which company verified this email domain")
            .filter(domain=domain, verified_at__isnull=False)
            .values_list("company_id", flat=True)
            .first()
        )
        if owner is not None:
            found.found(owner)
    if owner is None:
        return None
    return (
        SsoConnection.objects.filter(company_id=owner, enabled=True)
        .select_related("company")
        .first()
    )


def sso_connection_for_company_slug(*, slug: str) -> SsoConnection | None:
    company = Company.objects.filter(slug=slug).first()
    if company is None:
        return None
    rls.activate_company(company.pk)  # a choke point: the slug names the company
    return SsoConnection.objects.for_company(company).filter(enabled=True).first()


def sso_required_for_email(*, email: str) -> SsoConnection | None:
    """The connection through which ``email`` must sign in, when its company requires SSO."""
    connection = sso_connection_for_email(email=email)
    return connection if connection is not None and connection.sso_required else None
