"""Progress that updates itself: a campaign's and a contact import's counts move on the open
page (htmx polling) while the test advances them, and the polling stops once they are done."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from companies.models import Company
from responses.services import response_record
from surveys.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactImport,
    ImportStatus,
    Invitation,
    InvitationStatus,
)
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.tests.sending_factories import active_survey
from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BATCH = {"property": "batch", "op": "eq", "value": "live-progress"}


def _demo_company(var_dir: Path) -> Company:
    credentials = json.loads((var_dir / "demo-credentials.json").read_text())
    return Company.objects.get(slug=credentials["company_slug"])


def _running_campaign(company: Company) -> Campaign:
    """Four invitations waiting (due in an hour, so no worker sends them meanwhile)."""
    survey = active_survey(company, name="Live progress", throttle_days=0)
    Contact.objects.bulk_create(
        Contact(company=company, email=f"live{n}@example.com", properties={"batch": BATCH["value"]})
        for n in range(4)
    )
    campaign = campaign_create(
        company=company,
        survey=survey,
        audience={"filters": [BATCH]},
        scheduled_for=timezone.now() + timedelta(hours=1),
        name="Live progress",
    )
    campaign = campaign_expand(company=company, campaign_id=campaign.pk)
    assert campaign.status == CampaignStatus.SENDING
    return campaign


def test_campaign_progress_updates_live_and_stops_when_done(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    company = _demo_company(tmp_path)
    campaign = _running_campaign(company)
    invitations = Invitation.objects.for_company(company).filter(campaign=campaign)
    page.goto(f"/c/{company.slug}/surveys/campaigns/{campaign.public_id}/")
    card = page.get_by_test_id("campaign-progress")
    expect(card).to_have_attribute("data-running", "true")
    sent = card.locator('[data-progress="sent"]')
    expect(sent).to_have_text("0")
    expect(card.locator('[data-progress="response_rate"]')).to_have_text("—")

    # The test sends them, between two polls: the open page follows.
    invitations.update(status=InvitationStatus.SENT, sent_at=timezone.now())
    expect(sent).to_have_text("4")
    first = invitations.order_by("id").first()
    assert first is not None
    response_record(invitation=first, survey=first.survey, score=10, channel="email", language="en")
    expect(card.locator('[data-progress="answered"]')).to_have_text("1")
    expect(card.locator('[data-progress="response_rate"]')).to_have_text("25.0%")

    # Done: the last copy of the card carries no polling, so the page stops asking.
    Campaign.objects.for_company(company).filter(pk=campaign.pk).update(
        status=CampaignStatus.DONE, finished_at=timezone.now()
    )
    expect(card).to_have_attribute("data-running", "false")
    expect(card.get_by_test_id("campaign-status")).to_have_text("Done")
    assert card.get_attribute("hx-trigger") is None
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "campaign-progress-done.png"), full_page=True)

    # The results page of the campaign: its NPS from the one answer.
    page.get_by_test_id("campaign-results-link").click()
    expect(page.locator('[data-testid="campaign-results"] [data-testid="nps"]')).to_have_text("100")
    expect(page.locator("[data-state]")).to_have_count(4)


def test_import_progress_updates_live_and_stops_when_done(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    company = _demo_company(tmp_path)
    contact_import = ContactImport.objects.create(
        company=company,
        file_name="big.csv",
        headers=["email"],
        mapping={"email": "email"},
        status=ImportStatus.RUNNING,
        queued_at=timezone.now(),
        started_at=timezone.now(),
    )
    imports = ContactImport.objects.for_company(company).filter(pk=contact_import.pk)
    page.goto(f"/c/{company.slug}/contacts/import/{contact_import.public_id}/")
    result = page.get_by_test_id("import-result")
    expect(result.get_by_test_id("rows")).to_have_text("0")

    # A chunk of the worker's commits: the open page follows.
    imports.update(rows_total=10_000, created_count=9_000, updated_count=990, invalid_count=10)
    expect(result.get_by_test_id("rows")).to_have_text("10000")
    expect(result.get_by_test_id("created")).to_have_text("9000")
    expect(result.get_by_test_id("updated")).to_have_text("990")
    expect(result.get_by_test_id("invalid")).to_have_text("10")

    imports.update(
        status=ImportStatus.DONE,
        rows_total=12_000,
        created_count=11_000,
        finished_at=timezone.now(),
    )
    expect(result.get_by_test_id("created")).to_have_text("11000")
    expect(result).to_contain_text("Done")
    assert result.get_attribute("hx-trigger") is None
