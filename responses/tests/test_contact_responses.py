"""The contact page lists the contact's responses (responses_tags), never anonymous ones."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company
from conftest import Persona
from responses.models import Response
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.models import Contact, Survey

pytestmark = pytest.mark.django_db


def _answer(survey: Survey, contact: Contact, score: int, comment: str) -> Response:
    invitation, _token = make_invitation(survey, contact)
    return response_record(
        invitation=invitation,
        survey=survey,
        score=score,
        comment=comment,
        channel="email",
        language="en",
    )


def _url(company: Company, contact: Contact) -> str:
    return reverse(
        "contacts:detail", kwargs={"company_slug": company.slug, "contact_id": contact.public_id}
    )


def test_contact_page_shows_its_responses_only(viewer: Persona, company: Company) -> None:
    shop = make_survey(company, name="Coffee shop")
    staff = make_survey(company, name="Staff pulse", kind="enps", anonymous=True)
    ann = make_contact(company, "ann@c.test", name="Ann")
    bob = make_contact(company, "bob@c.test", name="Bob")
    mine = _answer(shop, ann, 9, "Great beans")
    _answer(shop, bob, 2, "Cold coffee")
    _answer(staff, ann, 3, "Secret staff feedback")
    page = viewer.client.get(_url(company, ann))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="contact-responses"' in html
    section = html.split('data-testid="contact-responses"', 1)[1]
    assert "Great beans" in section
    assert "<strong>9</strong>" in section
    assert "Coffee shop" in section
    assert mine.created_at.strftime("%Y-%m-%dT%H:%M") in section  # <time datetime=…>
    assert "Cold coffee" not in html  # another contact's
    assert "Secret staff feedback" not in html  # anonymous survey
    assert "Staff pulse" not in section


def test_contact_without_responses(viewer: Persona, company: Company) -> None:
    ann = make_contact(company, "ann@c.test")
    page = viewer.client.get(_url(company, ann))
    assert page.status_code == 200
    assert "No responses from this contact." in page.content.decode()


def test_queries_do_not_grow_with_responses(viewer: Persona, company: Company) -> None:
    ann = make_contact(company, "ann@c.test")
    _answer(make_survey(company, name="S0"), ann, 7, "one")
    with CaptureQueriesContext(connection) as one:
        assert viewer.client.get(_url(company, ann)).status_code == 200
    for n in range(1, 6):
        _answer(make_survey(company, name=f"S{n}"), ann, n, f"answer {n}")
    with CaptureQueriesContext(connection) as six:
        page = viewer.client.get(_url(company, ann))
    assert "answer 5" in page.content.decode()
    assert len(six.captured_queries) == len(one.captured_queries)


def test_outsider_gets_404(outsider: Persona, company: Company) -> None:
    ann = make_contact(company, "ann@c.test")
    _answer(make_survey(company), ann, 9, "Great beans")
    page = outsider.client.get(_url(company, ann))
    assert page.status_code == 404
    assert "Great beans" not in page.content.decode()
