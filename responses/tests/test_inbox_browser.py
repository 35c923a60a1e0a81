"""A real browser in the inbox: an agent opens it, assigns a follow-up to themself (from the
keyboard), replies to the customer by email, and resolves it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from companies.models import Membership, Role
from conftest import PASSWORD, add_member
from responses.alerts import alerts_evaluate
from responses.models import Followup
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey
from tests.browser.conftest import chromium_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_assigns_to_self_replies_and_resolves(
    chromium_page: Page,  # noqa: F811
    company,
    mailoutbox,
):
    agent = add_member(company, "agent@acme.test", Role.AGENT)
    survey = make_survey(company, name="Store visits")
    invitation, _token = make_invitation(survey, make_contact(company, name="Ann Customer"))
    response = response_record(
        invitation=invitation,
        survey=survey,
        score=2,
        comment="Nobody at the counter",
        channel="email",
        language="en",
    )
    alerts_evaluate(company=company, response_id=response.pk)
    Followup.objects.for_company(company).update(assignee=None)  # waiting for someone

    page = chromium_page
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(agent.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/c/{company.slug}/")
    nav = page.get_by_test_id("nav-inbox")
    expect(nav).to_contain_text("1")
    nav.click()
    page.get_by_test_id("view-unassigned").click()
    page.get_by_role("link", name="Nobody at the counter").click()
    expect(page.get_by_test_id("followup-comment")).to_have_text("Nobody at the counter")
    expect(page.get_by_test_id("contact")).to_contain_text("Ann Customer")

    # From the keyboard: focus the button, press Enter.
    page.get_by_test_id("assign-me").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("followup-assignee")).to_have_text(agent.email)

    # Reply to the customer: the email goes out, the thread shows it, it now waits on them.
    page.get_by_label("Message to the customer").fill("Sorry! We have fixed the counter.")
    page.get_by_test_id("reply-send").click()
    expect(page.get_by_test_id("thread")).to_contain_text("Sorry! We have fixed the counter.")
    expect(page.get_by_test_id("followup-status")).to_have_text("Waiting on customer")
    assert [m.to for m in mailoutbox if m.subject == "About your feedback"] == [
        ["ann@customer.test"]
    ]

    page.get_by_test_id("status-select").select_option("resolved")
    page.get_by_test_id("resolution-select").select_option("contacted")
    page.get_by_test_id("status-save").click()
    expect(page.get_by_test_id("followup-status")).to_have_text("Resolved")
    expect(page.get_by_test_id("thread")).to_contain_text("Status changed")

    followup = Followup.objects.for_company(company).get()
    assert followup.status == "resolved"
    assert followup.resolution == "contacted"
    assert followup.assignee == Membership.objects.for_company(company).get(user=agent)
