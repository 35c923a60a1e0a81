"""The answer pages: GET never records, POST records, CSRF, statuses, languages, branding."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from responses.models import Response
from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.models import SurveyStatus

pytestmark = pytest.mark.django_db


def _responses(company) -> list[Response]:
    return list(Response.objects.for_company(company))


def _csrf(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert match
    return match.group(1)


def test_plain_http_get_of_all_eleven_score_links_records_nothing(invitation_token, company):
    """What a mail scanner does: fetch every link of the message (and the page's assets)."""
    invitation, token = invitation_token
    client = Client()
    urls = [reverse("answer", kwargs={"token": token})] + [
        reverse("answer-score", kwargs={"token": token, "score": s}) for s in range(11)
    ]
    for url in urls:
        assert client.get(url).status_code == 200
        assert client.head(url).status_code == 200
    assert _responses(company) == []
    invitation.refresh_from_db()
    assert invitation.answered_at is None


def test_score_page_preselects_and_autorecords_from_the_browser(invitation_token):
    _invitation, token = invitation_token
    page = Client().get(reverse("answer-score", kwargs={"token": token, "score": 9}))
    html = page.content.decode()
    assert re.search(r'id="score-9" value="9" class="r-radio" checked', html)
    assert "data-auto-record" in html
    assert "responses/answer" in html
    assert ".js" in html
    assert "<script>" not in html, "no inline script (CSP script-src 'self')"
    # The follow-up for a promoter is the visible one.
    assert re.search(r'<span data-why="promoter" >', html)
    plain = Client().get(reverse("answer", kwargs={"token": token})).content.decode()
    assert "data-auto-record" not in plain
    assert " checked" not in plain


def test_script_post_records_the_score_alone_then_the_form_adds_the_comment(
    invitation_token, company
):
    _invitation, token = invitation_token
    client = Client(enforce_csrf_checks=True)
    url = reverse("answer-score", kwargs={"token": token, "score": 9})
    csrf = _csrf(client, url)
    auto = client.post(url, {"csrfmiddlewaretoken": csrf, "score": "9", "auto": "1"})
    assert auto.status_code == 200
    assert auto.json() == {"saved": True, "score": 9, "category": "promoter"}
    (response,) = _responses(company)
    assert (response.score, response.comment, response.channel) == (9, "", "email")
    # The no-JS form: score + comment + extras, then the thank-you page.
    done = client.post(
        url,
        {"csrfmiddlewaretoken": csrf, "score": "10", "comment": "Lovely staff", "extra_visit": "0"},
    )
    assert done.status_code == 303
    assert done["Location"].startswith(reverse("answer-thanks", kwargs={"token": token}))
    (response,) = _responses(company)
    assert (response.score, response.comment, response.extra_answers) == (
        10,
        "Lovely staff",
        {"visit": 0},
    )
    thanks = client.get(done["Location"])
    assert thanks.status_code == 200
    assert "Lovely staff" not in thanks.content.decode()
    # A later score click by script keeps the comment.
    client.post(url, {"csrfmiddlewaretoken": csrf, "score": "9", "auto": "1"})
    (response,) = _responses(company)
    assert (response.score, response.comment) == (9, "Lovely staff")


def test_post_without_csrf_token_is_refused(invitation_token, company):
    _invitation, token = invitation_token
    client = Client(enforce_csrf_checks=True)
    url = reverse("answer", kwargs={"token": token})
    assert client.post(url, {"score": "9"}).status_code == 403
    client.get(url)  # the cookie alone is not enough: the form's token is needed too
    assert client.post(url, {"score": "9"}).status_code == 403
    assert _responses(company) == []


def test_no_js_form_shows_errors_and_saves_nothing(invitation_token, company):
    _invitation, token = invitation_token
    url = reverse("answer", kwargs={"token": token})
    bad = Client().post(url, {"comment": "no score"})
    assert bad.status_code == 400
    assert "Choose a score from 0 to 10." in bad.content.decode()
    assert "no score" in bad.content.decode(), "the comment is kept in the form"
    assert Client().post(url, {"score": "11"}).status_code == 400
    assert Client().post(url, {"score": "5", "comment": "x" * 5001}).status_code == 400
    assert Client().post(url, {"score": "5", "extra_visit": "7"}).status_code == 400
    assert _responses(company) == []
    assert Client().post(url, {"score": "0"}).status_code == 303
    assert [r.score for r in _responses(company)] == [0]


def test_answering_again_updates_one_row(invitation_token, company):
    _invitation, token = invitation_token
    url = reverse("answer", kwargs={"token": token})
    Client().post(url, {"score": "4", "comment": "meh"})
    Client().post(url, {"score": "8", "comment": "better now"})
    (response,) = _responses(company)
    assert (response.score, response.category, response.comment) == (8, "passive", "better now")
    # The page opened again shows the current answer.
    html = Client().get(url).content.decode()
    assert re.search(r'id="score-8" value="8" class="r-radio" checked', html)
    assert "better now" in html


@pytest.mark.parametrize(
    ("token", "status"),
    [("A" * 43, 404), ("short", 404), ("x" * 200, 404), ("has%20space" + "a" * 33, 404)],
)
def test_unknown_or_malformed_token_is_a_friendly_404(db, token, status):
    page = Client().get(f"/r/{token}/")
    assert page.status_code == status
    assert "We could not find this survey" in page.content.decode()
    assert Client().post(f"/r/{token}/", {"score": "9"}).status_code == status


def test_expired_link_is_410(company, survey, contact):
    _inv, token = make_invitation(survey, contact, expires_at=timezone.now() - timedelta(seconds=1))
    url = reverse("answer-score", kwargs={"token": token, "score": 3})
    page = Client().get(url)
    assert page.status_code == 410
    assert "This link has expired" in page.content.decode()
    assert Client().post(url, {"score": "3"}).status_code == 410
    assert _responses(company) == []


def test_archived_survey_is_410(company, contact):
    survey = make_survey(company, status=SurveyStatus.ARCHIVED)
    _inv, token = make_invitation(survey, contact)
    assert Client().get(reverse("answer", kwargs={"token": token})).status_code == 410
    assert (
        Client().post(reverse("answer", kwargs={"token": token}), {"score": "3"}).status_code == 410
    )


def test_score_out_of_range_in_url_is_404(invitation_token):
    _inv, token = invitation_token
    assert Client().get(f"/r/{token}/11/").status_code == 404


def test_respondent_language_and_switch(company, contact):
    survey = make_survey(company, texts={"ru": {"question": "Порекомендуете ли вы {company}?"}})
    _inv, token = make_invitation(survey, contact, language="ru")
    url = reverse("answer", kwargs={"token": token})
    page = Client().get(url)
    html = page.content.decode()
    assert '<html lang="ru">' in html
    assert f"Порекомендуете ли вы {company.name}?" in html
    assert page["Content-Language"] == "ru"
    kk = Client().get(url + "?lang=kk")
    assert '<html lang="kk">' in kk.content.decode()
    assert Client().get(url + "?lang=xx")["Content-Language"] == "ru"
    # The answer records the page's language.
    Client().post(url + "?lang=kk", {"score": "9"})
    assert _responses(company)[0].language == "kk"


def test_branding_accent_logo_and_neutral_scale(company, contact):
    survey = make_survey(
        company,
        accent_color="#12ab34",
        logo_url="https://cdn.acme.test/logo.png",
        scale_style="neutral",
    )
    _inv, token = make_invitation(survey, contact)
    page = Client().get(reverse("answer", kwargs={"token": token}))
    html = page.content.decode()
    assert "--accent: #12ab34" in html
    assert 'src="https://cdn.acme.test/logo.png"' in html
    assert "r-scale-neutral" in html
    assert "https://cdn.acme.test" in page["Content-Security-Policy"]
    # The token in the page's URL is not sent to the logo's host (and a form POST still
    # carries its Origin, which CSRF checks: "no-referrer" would make it "null").
    assert page["Referrer-Policy"] == "same-origin"


def test_accent_colour_cannot_inject_css(company, contact):
    survey = make_survey(company, accent_color="red;}")
    _inv, token = make_invitation(survey, contact)
    html = Client().get(reverse("answer", kwargs={"token": token})).content.decode()
    assert "red;}" not in html
    assert "--accent: #4f46e5" in html


def test_page_is_accessible_markup(invitation_token):
    _inv, token = invitation_token
    html = Client().get(reverse("answer", kwargs={"token": token})).content.decode()
    assert "<fieldset" in html
    assert "<legend" in html
    for s in range(11):
        assert f'<label for="score-{s}"' in html
    assert '<label for="id_comment"' in html
    assert 'name="viewport"' in html
    assert 'type="submit"' in html


def test_static_assets_exist():
    from django.contrib.staticfiles import finders

    assert finders.find("responses/answer.js")
    assert finders.find("responses/respond.css")


def test_another_invitation_token_never_reaches_other_rows(company, other_company, survey):
    _a, token_a = make_invitation(survey, make_contact(company, "a@x.test"))
    other_survey = make_survey(other_company)
    inv_b, token_b = make_invitation(other_survey, make_contact(other_company, "b@x.test"))
    Client().post(reverse("answer", kwargs={"token": token_b}), {"score": "2"})
    assert _responses(company) == []
    (response,) = Response.objects.for_company(other_company)
    assert response.invitation == inv_b
    page = Client().get(reverse("answer", kwargs={"token": token_a})).content.decode()
    assert other_company.name not in page
