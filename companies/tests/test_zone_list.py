"""The time-zone select: current zones only, grouped by region, each with its city and UTC
offset; a stored older name stays valid."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from companies.models import Company
from companies.tests.test_company_settings import good_data, settings_url
from companies.zones import zone_label
from conftest import Persona

pytestmark = pytest.mark.django_db

DEPRECATED = ("Asia/Calcutta", "US/Pacific", "Etc/GMT+5", "Europe/Kiev", "GB", "Asia/Saigon")


def _select(html: str) -> str:
    found = re.search(r'<select name="time_zone".*?</select>', html, re.S)
    assert found is not None
    return found.group(0)


def _check_grouped(select: str) -> None:
    assert '<optgroup label="Asia">' in select
    assert '<optgroup label="Europe">' in select
    assert '<optgroup label="America">' in select
    assert '<option value="Asia/Almaty"' in select
    assert "Almaty (UTC+05:00)" in select
    assert "Buenos Aires (Argentina) (UTC" in select
    assert '<option value="Europe/Kyiv"' in select
    for name in DEPRECATED:
        assert f'value="{name}"' not in select, name
    assert select.count("<option") < 450


def test_signup_lists_current_zones_grouped_with_offsets(client: Client) -> None:
    select = _select(client.get(reverse("account_signup")).content.decode())
    _check_grouped(select)
    # Chrome reports some zones by older names: the page's script maps them to listed ones.
    found = re.search(r"data-zone-aliases=\"([^\"]*)\"", select)
    assert found is not None
    aliases = json.loads(html.unescape(found.group(1)))
    assert aliases["Asia/Calcutta"] == "Asia/Kolkata"
    assert aliases["Europe/Kiev"] == "Europe/Kyiv"
    assert all(f'value="{target}"' in select for target in aliases.values())


def test_settings_list_is_grouped_and_keeps_a_stored_older_name(
    owner: Persona, company: Company
) -> None:
    company.time_zone = "Asia/Calcutta"
    company.save(update_fields=["time_zone"])
    select = _select(owner.client.get(settings_url(company)).content.decode())
    assert '<option value="Asia/Calcutta" selected>' in select
    select_without = select.replace('value="Asia/Calcutta"', "")
    _check_grouped(select_without)
    # Saving the page unchanged keeps it; a current zone can be chosen instead.
    saved = owner.client.post(settings_url(company), good_data(time_zone="Asia/Calcutta"))
    assert saved.status_code == 302
    company.refresh_from_db()
    assert company.time_zone == "Asia/Calcutta"
    owner.client.post(settings_url(company), good_data(time_zone="Asia/Kolkata"))
    company.refresh_from_db()
    assert company.time_zone == "Asia/Kolkata"
    bad = owner.client.post(settings_url(company), good_data(time_zone="Mars/Olympus"))
    assert bad.status_code == 400 or "Select a valid choice" in bad.content.decode()


def test_labels() -> None:
    assert zone_label("UTC") == "UTC"
    assert zone_label("Asia/Almaty") == "Almaty (UTC+05:00)"
    assert zone_label("America/North_Dakota/New_Salem").startswith("New Salem (North Dakota) (UTC−")
    assert zone_label("Asia/Almaty", full=True) == "Asia/Almaty (UTC+05:00)"
