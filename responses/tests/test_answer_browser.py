"""A real browser on the score page: the score is recorded without a click, then the comment."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from responses.models import Response
from responses.tests.conftest import make_contact, make_invitation, make_survey
from tests.browser.conftest import chromium_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_score_link_records_on_open_then_comment_and_thanks(
    chromium_page: Page,  # noqa: F811
    company,
):
    survey = make_survey(company)
    invitation, token = make_invitation(survey, make_contact(company))
    page = chromium_page
    page.goto(f"/r/{token}/9/")
    expect(page.locator("[data-status]")).to_have_text("Thank you! Your score is saved.")
    (response,) = Response.objects.for_company(company)
    assert response.score == 9
    assert response.invitation == invitation
    # The promoter's follow-up is shown; pick 6 instead and the wording follows.
    expect(page.locator('[data-why="promoter"]')).to_be_visible()
    page.get_by_text("6", exact=True).click()
    expect(page.locator('[data-why="detractor"]')).to_be_visible()
    expect(page.locator('[data-why="promoter"]')).to_be_hidden()
    page.locator("#id_comment").fill("The queue was long")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("h1")).to_be_visible()
    assert "/thanks/" in page.url
    (response,) = Response.objects.for_company(company)
    assert (response.score, response.comment) == (6, "The queue was long")
