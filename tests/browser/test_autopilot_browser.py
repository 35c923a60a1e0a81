"""A recurring survey set up in the browser: from the survey editor to the Recurring page,
switched on, a segment added, a member listed and removed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from companies.models import Company
from surveys.models import AutopilotMember, AutopilotProgram, Contact
from surveys.tests.sending_factories import active_survey
from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_set_up_a_recurring_survey_and_manage_its_members(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
    company = Company.objects.get(slug=credentials["company_slug"])
    survey = active_survey(company, name="Quarterly pulse")
    Contact.objects.bulk_create(
        Contact(company=company, email=f"vip{n}@example.com", properties={"tier": "vip-browser"})
        for n in range(3)
    )
    page.goto(f"/c/{company.slug}/surveys/{survey.public_id}/")
    page.get_by_test_id("survey-autopilot").click()
    expect(page.get_by_role("heading", name="Recurring survey")).to_be_visible()

    form = page.get_by_test_id("autopilot-form")
    form.get_by_label("On: ask the members again and again").check()
    form.get_by_label("Ask again every").select_option("180")
    form.get_by_label("First ask after (days)").fill("14")
    page.get_by_test_id("autopilot-save").click()
    expect(page.get_by_text("Recurring survey saved.")).to_be_visible()
    program = AutopilotProgram.objects.for_company(company).get(survey=survey)
    assert (program.channel, program.active, program.cadence_days, program.first_delay_days) == (
        "email",
        True,
        180,
        14,
    )

    adding = page.get_by_test_id("autopilot-add")
    adding.get_by_label("Contacts matching these properties").check()
    adding.locator('[name="property_0"]').fill("tier")
    adding.locator('[name="value_0"]').fill("vip-browser")
    adding.get_by_role("button", name="Add to the recurring survey").click()
    expect(page.get_by_text("The segment's contacts are being added")).to_be_visible()
    # Tasks run inline in tests: the join is done by the time the page is shown.
    join_row = page.get_by_test_id("autopilot-joins").locator("tbody tr")
    expect(join_row).to_have_attribute("data-join-done", "true")
    expect(join_row.locator('[data-join="added"]')).to_have_text("3")
    members = page.get_by_test_id("autopilot-members")
    expect(members.locator("tbody tr")).to_have_count(3)
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "recurring-survey.png"), full_page=True)

    members.locator("tbody tr").first.get_by_role("button", name="Remove").click()
    expect(page.get_by_test_id("autopilot-members").locator("tbody tr")).to_have_count(2)
    assert AutopilotMember.objects.for_company(company).count() == 2
