"""The import page shows the worker's counts as it commits them, and polls only while the
import runs."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from companies.models import Company
from conftest import Persona
from surveys.models import ContactImport, ImportStatus

pytestmark = pytest.mark.django_db


def test_import_page_polls_while_running_with_the_committed_counts(
    personas: dict[str, Persona], company: Company
) -> None:
    contact_import = ContactImport.objects.create(
        company=company,
        file_name="big.csv",
        headers=["email"],
        mapping={"email": "email"},
        status=ImportStatus.RUNNING,
        rows_total=20_000,
        created_count=15_000,
        updated_count=4_990,
        invalid_count=10,
    )
    url = reverse(
        "contacts:import_detail",
        kwargs={"company_slug": company.slug, "import_id": contact_import.public_id},
    )
    manager = personas["manager"].client
    html = manager.get(url).content.decode()
    counts = dict(re.findall(r'data-testid="(rows|created|updated|invalid)">([^<]*)<', html))
    assert counts == {"rows": "20000", "created": "15000", "updated": "4990", "invalid": "10"}
    assert 'hx-trigger="every 2s"' in html
    ContactImport.objects.for_company(company).filter(pk=contact_import.pk).update(
        status=ImportStatus.DONE
    )
    assert "hx-trigger" not in manager.get(url).content.decode()
    assert personas["agent"].client.get(url).status_code == 403
