"""An uploaded file is read by the worker, not by the request: the import's page waits for it
and, once the header is read, becomes the mapping screen by itself (htmx polling)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import Page, expect

from companies.models import Company
from surveys import imports
from surveys.imports import contact_import_create, contact_import_run
from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_import_page_waits_for_the_worker_then_shows_the_mapping(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
) -> None:
    page = chromium_page
    settings.MEDIA_ROOT = str(tmp_path / "media")
    log_in_as_demo_owner(page, settings, tmp_path)
    credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
    company = Company.objects.get(slug=credentials["company_slug"])
    content = b"Mail,Plan\nzara@example.com,pro\n"
    with mock.patch.object(imports, "wake"):  # no worker yet
        contact_import = contact_import_create(
            company=company, upload=SimpleUploadedFile("people.csv", content)
        )
    page.goto(f"/c/{company.slug}/contacts/import/{contact_import.public_id}/")
    expect(page.get_by_test_id("import-reading")).to_be_visible()
    expect(page.get_by_test_id("import-status")).to_have_text("Reading the file")

    contact_import_run(company=company, import_pk=contact_import.pk)  # the worker

    expect(page).to_have_url(re.compile(r"/mapping/$"))
    mapping = page.get_by_test_id("mapping")
    expect(mapping.locator("code.sample").first).to_have_text("zara@example.com")
    expect(mapping.locator("select").first).to_have_value("email")
