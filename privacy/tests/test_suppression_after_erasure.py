"""After erasure the address is gone but still refused: by the post office's sends, by
campaigns, and by the Delighted importer, which does not write the plain address back."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from notifications.email import OutgoingEmail, email_send
from notifications.models import DeliveryStatus, Suppression
from privacy.models import IdentifierKind, RequestVia
from privacy.selectors import person_identify
from privacy.services import Actor, person_erase
from privacy.tests.helpers import EMAIL, person_everywhere
from surveys.models import Contact
from surveys.services.invitations import suppressed_on

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _erased(company):
    person_everywhere(company)
    person = person_identify(company=company, kind=IdentifierKind.EMAIL, value=EMAIL)
    person_erase(company=company, person=person, actor=Actor(via=RequestVia.WEB))
    assert not Suppression.objects.for_company(company).filter(address=EMAIL).exists()


def test_the_post_office_still_refuses_the_erased_address(company):
    _erased(company)
    (delivery,) = email_send(
        company=company,
        emails=[OutgoingEmail(to=EMAIL.upper(), subject="Hello", text="Hi", html="<p>Hi</p>")],
    )
    assert delivery.status == DeliveryStatus.SUPPRESSED


def test_campaigns_still_skip_the_erased_address(company):
    _erased(company)
    # The company imports the person again: they are a contact again, never surveyed.
    Contact.objects.create(company=company, email=EMAIL)
    assert suppressed_on(company=company, channel="email", addresses=[EMAIL]) == {EMAIL}


def test_a_delighted_import_does_not_write_the_address_back(company, tmp_path: Path):
    _erased(company)
    export = tmp_path / "unsubscribes.csv"
    export.write_text(
        f"Person ID,Email,Name,Unsubscribed At\n1,{EMAIL},Ana,2026-05-20T09:00:00Z\n",
        encoding="utf-8",
    )
    call_command("import_delighted", "--company", company.slug, str(export), stdout=io.StringIO())
    addresses = list(Suppression.objects.for_company(company).values_list("address", flat=True))
    assert len(addresses) == 1
    assert addresses[0].startswith("sha256:")
