"""Email domains: claimed by a company, verified by a DNS TXT record read with dnspython."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.resolver
import pytest
from django.core.exceptions import ValidationError

from companies.models import Company
from sso import dns_check
from sso.models import SsoDomain
from sso.services import sso_domain_add, sso_domain_clean, sso_domain_verify
from sso.tests.fake_dns import FakeDns

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    server = FakeDns().start()
    monkeypatch.setattr(dns_check, "resolver", server.resolver)
    yield server
    server.stop()


def test_a_published_txt_record_verifies_the_domain(company: Company, fake_dns: FakeDns):
    domain = sso_domain_add(company=company, domain="Acme.TEST")
    assert domain.domain == "acme.test"
    fake_dns.txt["acme.test"] = ["v=spf1 -all", domain.txt_record]

    sso_domain_verify(company=company, domain=domain)

    domain.refresh_from_db()
    assert domain.verified_at is not None


def test_without_the_record_the_domain_stays_unverified(company: Company, fake_dns: FakeDns):
    domain = sso_domain_add(company=company, domain="acme.test")
    fake_dns.txt["acme.test"] = ["nps-saas-verification=someone-elses-token"]

    with pytest.raises(ValidationError, match="No TXT record"):
        sso_domain_verify(company=company, domain=domain)

    domain.refresh_from_db()
    assert domain.verified_at is None


def test_a_domain_that_does_not_exist_stays_unverified(company: Company, fake_dns: FakeDns):
    domain = sso_domain_add(company=company, domain="nowhere.test")
    with pytest.raises(ValidationError, match="No TXT record"):
        sso_domain_verify(company=company, domain=domain)


def test_a_domain_verified_by_one_company_cannot_be_verified_by_another(
    company: Company, other_company: Company, fake_dns: FakeDns
):
    ours = sso_domain_add(company=company, domain="shared.test")
    theirs = sso_domain_add(company=other_company, domain="shared.test")
    fake_dns.txt["shared.test"] = [ours.txt_record, theirs.txt_record]
    sso_domain_verify(company=company, domain=ours)

    with pytest.raises(ValidationError, match="already verified by another company"):
        sso_domain_verify(company=other_company, domain=theirs)

    theirs.refresh_from_db()
    assert theirs.verified_at is None


def test_dns_that_does_not_answer_is_a_clear_error(
    company: Company, monkeypatch: pytest.MonkeyPatch
):
    # A bound UDP port where nothing answers: dnspython times out.
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = mute.getsockname()[1]
    monkeypatch.setattr(dns_check, "resolver", lambda: resolver)
    monkeypatch.setattr(dns_check, "LOOKUP_SECONDS", 0.5)
    domain = sso_domain_add(company=company, domain="slow.test")
    try:
        with pytest.raises(ValidationError, match="DNS did not answer"):
            sso_domain_verify(company=company, domain=domain)
    finally:
        mute.close()
    domain.refresh_from_db()
    assert domain.verified_at is None


@pytest.mark.parametrize(
    "value", ["", "localhost", "not a domain", "-bad.test", "a..b.test", "x" * 64 + ".test"]
)
def test_bad_domains_are_refused(value: str):
    with pytest.raises(ValidationError):
        sso_domain_clean(value)


def test_unicode_domains_are_stored_in_ascii():
    assert sso_domain_clean("Пример.рф") == "xn--e1afmkfd.xn--p1ai"
    assert sso_domain_clean("@acme.test.") == "acme.test"


def test_the_same_domain_twice_is_refused(company: Company):
    sso_domain_add(company=company, domain="acme.test")
    with pytest.raises(ValidationError, match="already listed"):
        sso_domain_add(company=company, domain="ACME.test")
    assert SsoDomain.objects.for_company(company).count() == 1
