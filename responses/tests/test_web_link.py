"""The open web link /l/<survey id>/: one answer per browser, IP rate limit, signed identity."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client
from django.urls import reverse

from responses import views_public
from responses.models import Response
from responses.services import browser_key_for, link_signature
from responses.tests.conftest import make_contact, make_survey
from surveys.models import Contact, SurveyStatus

pytestmark = pytest.mark.django_db


def _client() -> Client:
    # A fresh address per test: the rate limit counts per IP in the shared cache.
    return Client(
        REMOTE_ADDR=f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    )


def _url(survey, **query) -> str:
    url = reverse("link", kwargs={"public_id": survey.public_id})
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return url


def _rows(company) -> list[Response]:
    return list(Response.objects.for_company(company).order_by("id"))


def test_get_records_nothing_and_sets_the_browser_cookie(company, survey):
    client = _client()
    page = client.get(_url(survey))
    assert page.status_code == 200
    assert views_public.BROWSER_COOKIE in page.cookies
    assert page.cookies[views_public.BROWSER_COOKIE]["httponly"]
    assert _rows(company) == []


def test_one_response_per_browser(company, survey):
    client = _client()
    client.get(_url(survey))
    first = client.post(_url(survey), {"score": "3", "comment": "cold"})
    assert first.status_code == 303
    assert first["Location"].startswith(
        reverse("link-thanks", kwargs={"public_id": survey.public_id})
    )
    assert client.get(first["Location"]).status_code == 200
    client.post(_url(survey), {"score": "9", "comment": "warm now"})
    (row,) = _rows(company)
    assert (row.score, row.comment, row.channel, row.invitation, row.contact) == (
        9,
        "warm now",
        "link",
        None,
        None,
    )
    cookie = client.cookies[views_public.BROWSER_COOKIE].value
    assert row.browser_key == browser_key_for(cookie)
    assert cookie not in row.browser_key
    # Another browser is another response.
    _client().post(_url(survey), {"score": "10"})
    assert len(_rows(company)) == 2
    # The page shows this browser's own answer.
    assert "warm now" in client.get(_url(survey)).content.decode()


def test_rate_limit_per_ip_is_429(company, survey, monkeypatch):
    monkeypatch.setattr(views_public, "LINK_POSTS_PER_WINDOW", 3)
    ip = f"10.200.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    for _ in range(3):
        assert Client(REMOTE_ADDR=ip).post(_url(survey), {"score": "5"}).status_code == 303
    refused = Client(REMOTE_ADDR=ip).post(_url(survey), {"score": "5"})
    assert refused.status_code == 429
    assert "Too many answers" in refused.content.decode()
    assert len(_rows(company)) == 3
    assert _client().post(_url(survey), {"score": "5"}).status_code == 303, "other IPs are fine"


def test_signed_email_identifies_the_contact(company, survey):
    contact = make_contact(company, "known@customer.test", properties={"tier": "b2b"})
    sig = link_signature(company=company, email="known@customer.test")
    client = _client()
    client.post(_url(survey, email="Known@Customer.test", sig=sig), {"score": "10"})
    (row,) = _rows(company)
    assert row.contact == contact
    assert row.contact_properties == {"tier": "b2b"}


def test_signed_unknown_email_creates_the_contact(company, survey):
    sig = link_signature(company=company, email="new@customer.test")
    _client().post(_url(survey, email="new@customer.test", sig=sig), {"score": "7"})
    (row,) = _rows(company)
    assert row.contact is not None
    assert row.contact.email == "new@customer.test"


def test_bad_signature_is_ignored(company, other_company, survey):
    make_contact(company, "victim@customer.test")
    bad = link_signature(company=other_company, email="victim@customer.test")
    assert (
        _client()
        .post(_url(survey, email="victim@customer.test", sig=bad), {"score": "0"})
        .status_code
        == 303
    )
    assert (
        _client()
        .post(_url(survey, email="victim@customer.test", sig="00"), {"score": "1"})
        .status_code
        == 303
    )
    assert [r.contact for r in _rows(company)] == [None, None]
    assert Contact.objects.for_company(company).count() == 1


def test_anonymous_survey_ignores_even_a_good_signature(company):
    survey = make_survey(company, anonymous=True, kind="enps")
    sig = link_signature(company=company, email="emp@acme.test")
    _client().post(_url(survey, email="emp@acme.test", sig=sig), {"score": "6"})
    (row,) = _rows(company)
    assert row.contact is None
    assert not Contact.objects.for_company(company).filter(email="emp@acme.test").exists()


@pytest.mark.parametrize(
    ("status", "code"),
    [(SurveyStatus.DRAFT, 404), (SurveyStatus.PAUSED, 410), (SurveyStatus.ARCHIVED, 410)],
)
def test_only_active_surveys_take_answers(company, status, code):
    survey = make_survey(company, status=status)
    assert _client().get(_url(survey)).status_code == code
    assert _client().post(_url(survey), {"score": "9"}).status_code == code
    assert _rows(company) == []


def test_unknown_survey_is_404(db):
    assert _client().get("/l/nope/").status_code == 404
