"""Moving from Delighted in a real browser: from the contact import page, upload all four
exports at once, correct nothing but one column, import, and read the counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DATA = Path(__file__).resolve().parents[2] / "delighted_compat" / "tests" / "data"


def test_delighted_exports_imported_from_the_browser(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    page.goto("/")
    page.get_by_role("link", name="Contacts").first.click()
    page.get_by_role("link", name="Import CSV / Excel").click()
    page.get_by_test_id("delighted-import-link").click()
    page.locator("input[type=file]").set_input_files(
        [
            DATA / "delighted-responses.csv",
            DATA / "delighted-people.csv",
            DATA / "delighted-unsubscribes.csv",
            DATA / "delighted-bounces.csv",
        ]
    )
    page.get_by_role("button", name="Upload and check the columns").click()

    files = page.get_by_test_id("delighted-file")
    expect(files).to_have_count(4)
    responses = files.filter(has_text="delighted-responses.csv")
    expect(responses.get_by_label("This file holds")).to_have_value("responses")
    expect(responses.locator("tr[data-unrecognised]")).to_have_count(2)
    responses.get_by_label("Country").select_option("ignore")
    page.get_by_role("button", name="Import").click()

    results = page.get_by_test_id("delighted-result")
    expect(results).to_have_count(4)
    answers = results.filter(has_text="delighted-responses.csv")
    expect(answers.get_by_test_id("status")).to_have_text("Done")
    expect(answers.get_by_test_id("created")).to_have_text("15")
    expect(answers.get_by_test_id("invalid")).to_have_text("2")
    expect(answers.get_by_test_id("import-errors")).to_contain_text("0 to 10")
    with page.expect_download() as download:
        answers.get_by_role("link", name="Download the invalid rows (CSV)").click()
    report = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in report
