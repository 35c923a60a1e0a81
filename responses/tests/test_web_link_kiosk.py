"""Kiosk mode of the web link (``/l/<id>/?kiosk=<key>``): one tablet, many people."""

from __future__ import annotations

import html
import re
import secrets

import pytest
from django.test import Client
from django.urls import reverse

from responses import views_public
from responses.models import Response
from responses.services import link_signature
from responses.tests.conftest import make_contact, make_survey
from surveys.services.links import kiosk_key, kiosk_url

pytestmark = pytest.mark.django_db

PERSON = re.compile(r'name="kiosk_person" value="([A-Za-z0-9_-]{43})"')


def _ip() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"


def _kiosk(survey, **extra) -> str:
    path = reverse("link", kwargs={"public_id": survey.public_id})
    query = "&".join(f"{k}={v}" for k, v in extra.items())
    return f"{path}?kiosk={kiosk_key(survey)}" + (f"&{query}" if query else "")


def _rows(company) -> list[Response]:
    return list(Response.objects.for_company(company).order_by("id"))


def _person(page) -> str:
    match = PERSON.search(page.content.decode())
    assert match, "the kiosk's question page carries the person"
    return match.group(1)


def _answer(client: Client, survey, **data):
    """One person at the kiosk: opens the fresh question, answers it."""
    page = client.get(_kiosk(survey))
    assert page.status_code == 200
    return client.post(_kiosk(survey), {"kiosk_person": _person(page), **data})


def test_each_person_is_a_new_response_and_sees_nothing_of_the_one_before(company, survey):
    tablet = Client(REMOTE_ADDR=_ip())
    first = _answer(tablet, survey, score="3", comment="Queue was long")
    assert first.status_code == 303
    thanks = reverse("link-thanks", kwargs={"public_id": survey.public_id})
    assert first["Location"].startswith(thanks)
    assert f"kiosk={kiosk_key(survey)}" in first["Location"]
    fresh = tablet.get(_kiosk(survey)).content.decode()
    assert "Queue was long" not in fresh
    assert " checked" not in fresh  # no score selected for the next person
    _answer(tablet, survey, score="10", comment="Lovely coffee")
    rows = _rows(company)
    assert [(r.score, r.comment, r.channel) for r in rows] == [
        (3, "Queue was long", "link"),
        (10, "Lovely coffee", "link"),
    ]
    assert rows[0].browser_key != rows[1].browser_key
    assert views_public.BROWSER_COOKIE not in tablet.cookies, "a kiosk keeps no browser id"


def test_one_persons_corrections_stay_one_response(company, survey):
    tablet = Client(REMOTE_ADDR=_ip())
    person = _person(tablet.get(_kiosk(survey)))
    refused = tablet.post(_kiosk(survey), {"kiosk_person": person, "comment": "no score"})
    assert refused.status_code == 400
    assert _person(refused) == person, "the corrected form is still the same person"
    tablet.post(_kiosk(survey), {"kiosk_person": person, "score": "6"})
    tablet.post(_kiosk(survey), {"kiosk_person": person, "score": "8", "comment": "ok"})
    (row,) = _rows(company)
    assert (row.score, row.comment) == (8, "ok")


def test_a_wrong_key_is_the_ordinary_link(company, survey, other_company):
    other = make_survey(other_company)
    client = Client(REMOTE_ADDR=_ip())
    path = reverse("link", kwargs={"public_id": survey.public_id})
    page = client.get(f"{path}?kiosk={kiosk_key(other)}")
    assert PERSON.search(page.content.decode()) is None
    client.post(f"{path}?kiosk=1", {"score": "4"})
    client.post(f"{path}?kiosk=1", {"score": "5"})
    (row,) = _rows(company)  # one per browser, as on the open link
    assert row.score == 5


def test_the_thank_you_page_returns_to_a_fresh_question(company, survey):
    tablet = Client(REMOTE_ADDR=_ip())
    done = _answer(tablet, survey, score="9")
    page = tablet.get(done["Location"])
    body = html.unescape(page.content.decode())
    fresh = _kiosk(survey)
    seconds = views_public.KIOSK_RESET_SECONDS
    assert f'<meta http-equiv="refresh" content="{seconds};url={fresh}">' in body
    assert f'href="{fresh}" data-testid="kiosk-next"' in body
    assert "Change my answer" not in body
    assert "promoter-link" not in body


def test_the_language_chosen_by_one_person_is_not_kept_for_the_next(company, survey):
    tablet = Client(REMOTE_ADDR=_ip())
    page = tablet.get(_kiosk(survey, lang="ru"))
    done = tablet.post(_kiosk(survey, lang="ru"), {"kiosk_person": _person(page), "score": "7"})
    thanks = tablet.get(done["Location"])
    assert thanks["Content-Language"] == "ru"
    next_url = re.search(r'href="([^"]+)" data-testid="kiosk-next"', thanks.content.decode())
    assert next_url
    assert "lang=" not in html.unescape(next_url.group(1))


def test_a_kiosk_is_not_held_to_the_open_links_limit(company, survey, monkeypatch):
    monkeypatch.setattr(views_public, "LINK_POSTS_PER_WINDOW", 2)
    monkeypatch.setattr(views_public, "KIOSK_POSTS_PER_WINDOW", 5)
    ip = _ip()
    tablet = Client(REMOTE_ADDR=ip)
    for score in range(5):
        assert _answer(tablet, survey, score=str(score)).status_code == 303
    assert len(_rows(company)) == 5
    # Its own limit still holds, per survey and address.
    refused = _answer(tablet, survey, score="9")
    assert refused.status_code == 429
    assert len(_rows(company)) == 5
    # Phones on the same network use the open link's budget, untouched by the kiosk...
    path = reverse("link", kwargs={"public_id": survey.public_id})
    assert Client(REMOTE_ADDR=ip).post(path, {"score": "8"}).status_code == 303
    # ...and another survey's kiosk at the same address has its own.
    other = make_survey(company, name="Other shop")
    assert _answer(Client(REMOTE_ADDR=ip), other, score="8").status_code == 303


def test_a_signed_email_in_the_kiosk_address_identifies_no_one(company, survey):
    make_contact(company, "owner@customer.test")
    sig = link_signature(company=company, email="owner@customer.test")
    tablet = Client(REMOTE_ADDR=_ip())
    url = _kiosk(survey, email="owner@customer.test", sig=sig)
    page = tablet.get(url)
    tablet.post(url, {"kiosk_person": _person(page), "score": "2"})
    (row,) = _rows(company)
    assert row.contact is None


def test_the_kiosk_url_is_the_web_link_with_the_key(settings, survey):
    settings.SITE_URL = "https://nps.example.com"
    assert kiosk_url(survey) == (
        f"https://nps.example.com/l/{survey.public_id}/?kiosk={kiosk_key(survey)}"
    )
    assert len(kiosk_key(survey)) == 32
