"""The promoters' review or referral link on the thank-you page (per survey, promoters only)."""

from __future__ import annotations

import secrets

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.services.surveys import survey_update

pytestmark = pytest.mark.django_db

REVIEW = "https://reviews.example.test/acme?utm_source=nps"


def _answer_by_email(survey, contact, score: int) -> str:
    """Answer ``score`` through the invitation's form; the thank-you page's HTML."""
    _invitation, token = make_invitation(survey, contact)
    client = Client()
    done = client.post(reverse("answer", kwargs={"token": token}), {"score": str(score)})
    assert done.status_code == 303
    return client.get(done["Location"]).content.decode()


@pytest.mark.parametrize("score", [9, 10])
def test_promoters_see_the_link_with_the_default_wording(company, score):
    survey = make_survey(company, promoter_link_url=REVIEW)
    html = _answer_by_email(survey, make_contact(company), score)
    assert 'data-testid="promoter-link"' in html
    assert 'href="https://reviews.example.test/acme?utm_source=nps"' in html
    assert 'rel="noopener noreferrer"' in html
    assert "Leave a review" in html


@pytest.mark.parametrize("score", [0, 6, 7, 8])
def test_passives_and_detractors_do_not(company, score):
    survey = make_survey(company, promoter_link_url=REVIEW)
    html = _answer_by_email(survey, make_contact(company), score)
    assert "promoter-link" not in html
    assert "reviews.example.test" not in html


def test_no_link_without_a_url(company):
    html = _answer_by_email(make_survey(company), make_contact(company), 10)
    assert "promoter-link" not in html


def test_changed_answer_changes_the_page(company):
    """A promoter who lowers the score to 5 no longer gets asked for a review."""
    survey = make_survey(company, promoter_link_url=REVIEW)
    _invitation, token = make_invitation(survey, make_contact(company))
    client = Client()
    url = reverse("answer", kwargs={"token": token})
    thanks = client.post(url, {"score": "10"})["Location"]
    assert "promoter-link" in client.get(thanks).content.decode()
    client.post(url, {"score": "5"})
    assert "promoter-link" not in client.get(thanks).content.decode()


def test_wording_per_language_and_enps_default(company):
    survey = make_survey(
        company,
        promoter_link_url=REVIEW,
        texts={"ru": {"promoter_invite": "Оцените нас на картах", "promoter_button": "Оценить"}},
    )
    _invitation, token = make_invitation(survey, make_contact(company, language="ru"))
    client = Client()
    done = client.post(reverse("answer", kwargs={"token": token}) + "?lang=ru", {"score": "9"})
    html = client.get(done["Location"]).content.decode()
    assert "Оцените нас на картах" in html
    assert ">Оценить</a>" in html
    enps = make_survey(company, name="Team", kind="enps", anonymous=True, promoter_link_url=REVIEW)
    html = _answer_by_email(enps, make_contact(company, email="bo@staff.test"), 10)
    assert "Refer a friend" in html


def test_web_link_promoter_sees_it_by_their_browser(company):
    survey = make_survey(company, promoter_link_url=REVIEW)
    client = Client(REMOTE_ADDR=f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}")
    url = reverse("link", kwargs={"public_id": survey.public_id})
    client.get(url)
    thanks = client.post(url, {"score": "9"})["Location"]
    assert "promoter-link" in client.get(thanks).content.decode()
    # Someone else opening the same thank-you address has no answer: no link.
    assert "promoter-link" not in Client().get(thanks).content.decode()
    client.post(url, {"score": "4"})
    assert "promoter-link" not in client.get(thanks).content.decode()


def test_only_https_links_are_accepted(company, owner):
    survey = make_survey(company)
    for bad in ("http://reviews.example.test/", "javascript:alert(1)", "ftp://x.test/"):
        with pytest.raises(ValidationError) as caught:
            survey_update(company=company, survey=survey, promoter_link_url=bad)
        assert caught.value.message_dict == {"promoter_link_url": ["Use an https:// address."]}
    survey_update(company=company, survey=survey, promoter_link_url=f"  {REVIEW} ")
    survey.refresh_from_db()
    assert survey.promoter_link_url == REVIEW


def test_api_reads_and_writes_the_link(company, owner):
    from companies.services import api_key_create

    key = api_key_create(company=company, name="k").key
    survey = make_survey(company)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    url = f"/api/v1/surveys/{survey.public_id}/"
    bad = client.patch(
        url, {"promoter_link_url": "http://x.test/"}, content_type="application/json"
    )
    assert bad.status_code == 400
    assert "promoter_link_url" in bad.json()["error"]["fields"]
    good = client.patch(
        url,
        {"promoter_link_url": REVIEW, "texts": {"en": {"promoter_button": "Review us"}}},
        content_type="application/json",
    )
    assert good.status_code == 200, good.content
    assert good.json()["promoter_link_url"] == REVIEW
    assert good.json()["texts"]["en"]["promoter_button"] == "Review us"
