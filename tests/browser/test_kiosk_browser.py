"""Kiosk mode in Chromium: after the thank-you the tablet returns to a fresh question by
itself (and on "Next person"), and every person is a new response."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from responses import views_public
from responses.models import Response
from responses.tests.conftest import make_survey
from surveys.services.links import kiosk_key
from tests.browser.conftest import chromium_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _answer(page: Page, score: int, comment: str) -> None:
    expect(page.locator("input[name=score]:checked")).to_have_count(0)
    expect(page.locator("#id_comment")).to_have_value("")
    page.locator(f"label[for=score-{score}]").click()
    page.locator("#id_comment").fill(comment)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#thanks-title")).to_be_visible()


def test_the_kiosk_resets_for_the_next_person(
    chromium_page: Page,  # noqa: F811
    company,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(views_public, "KIOSK_RESET_SECONDS", 1)
    survey = make_survey(company)
    page = chromium_page
    question = re.compile(rf"/l/{survey.public_id}/\?kiosk={kiosk_key(survey)}$")
    page.goto(f"/l/{survey.public_id}/?kiosk={kiosk_key(survey)}")

    _answer(page, 2, "Cold coffee")
    page.wait_for_url(question)  # by itself, after the thank-you
    _answer(page, 9, "Friendly barista")
    page.get_by_test_id("kiosk-next").click()
    page.wait_for_url(question)
    _answer(page, 7, "Fine")

    rows = list(Response.objects.for_company(company).order_by("id"))
    assert [(r.score, r.comment) for r in rows] == [
        (2, "Cold coffee"),
        (9, "Friendly barista"),
        (7, "Fine"),
    ]
    assert len({r.browser_key for r in rows}) == 3


def test_a_half_answered_question_is_cleared(
    chromium_page: Page,  # noqa: F811
    company,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(views_public, "KIOSK_IDLE_SECONDS", 1)
    survey = make_survey(company)
    page = chromium_page
    page.goto(f"/l/{survey.public_id}/?kiosk={kiosk_key(survey)}")
    person = page.locator("[name=kiosk_person]").input_value()
    page.locator("label[for=score-4]").click()
    expect(page.locator("input[name=score]:checked")).to_have_count(1)
    # Left alone: the page comes back empty, for a new person.
    expect(page.locator("[name=kiosk_person]")).not_to_have_value(person)
    expect(page.locator("input[name=score]:checked")).to_have_count(0)
    assert not Response.objects.for_company(company).exists()
