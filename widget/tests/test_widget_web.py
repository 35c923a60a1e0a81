"""The survey's widget page: the script tag to copy and the settings form."""

from __future__ import annotations

import html
from typing import Any

import pytest

from companies.models import Company
from responses.services import link_secret
from responses.tests.conftest import make_survey
from widget.models import WidgetSettings
from widget.views_public import script_version

pytestmark = pytest.mark.django_db


def _url(company: Company, survey_id: str, tail: str = "") -> str:
    return f"/c/{company.slug}/surveys/{survey_id}/widget/{tail}"


def test_a_manager_copies_the_tag_and_saves_the_rules(
    company: Company, personas: dict[str, Any]
) -> None:
    survey = make_survey(company)
    manager = personas["manager"]
    page = manager.client.get(_url(company, survey.public_id))
    assert page.status_code == 200
    widget = WidgetSettings.objects.for_company(company).get(survey=survey)
    text = html.unescape(page.content.decode())
    assert f"/w/nps.js?v={script_version()}" in text
    assert f'data-key="{widget.publishable_key}"' in text
    assert link_secret(company=company) not in text  # admins only
    saved = manager.client.post(
        _url(company, survey.public_id),
        {
            "enabled": "on",
            "allowed_origins": "https://app.example.com/\nhttp://localhost:3000",
            "sample_percent": 50,
            "delay_seconds": 10,
            "min_days_since_created": 14,
            "url_contains": "/app\n",
            "url_not_contains": "checkout",
            "dismissal_cooldown_days": 7,
            "anonymous_cooldown_days": 60,
            "verify_identity": "on",
        },
    )
    assert saved.status_code == 302
    widget.refresh_from_db()
    assert widget.enabled
    assert widget.verify_identity
    assert widget.allowed_origins == ["https://app.example.com", "http://localhost:3000"]
    assert (widget.url_contains, widget.url_not_contains) == (["/app"], ["checkout"])
    assert (widget.sample_percent, widget.delay_seconds) == (50, 10)


def test_a_bad_origin_is_shown_next_to_its_field(
    company: Company, personas: dict[str, Any]
) -> None:
    survey = make_survey(company)
    page = personas["manager"].client.post(
        _url(company, survey.public_id),
        {
            "allowed_origins": "https://app.example.com/path",
            "sample_percent": 100,
            "delay_seconds": 0,
            "min_days_since_created": 0,
            "dismissal_cooldown_days": 7,
            "anonymous_cooldown_days": 60,
        },
    )
    assert page.status_code == 200
    assert "https://app.example.com/path" in page.content.decode()
    assert not WidgetSettings.objects.for_company(company).get(survey=survey).enabled


def test_admins_see_the_signing_secret_and_rotate_the_key(company: Company, owner: Any) -> None:
    survey = make_survey(company)
    page = owner.client.get(_url(company, survey.public_id))
    assert link_secret(company=company) in page.content.decode()
    old = WidgetSettings.objects.for_company(company).get(survey=survey).publishable_key
    assert owner.client.post(_url(company, survey.public_id, "rotate/")).status_code == 302
    new = WidgetSettings.objects.for_company(company).get(survey=survey).publishable_key
    assert new != old
    assert new.startswith("wpk_")


def test_lesser_roles_and_outsiders(
    company: Company, personas: dict[str, Any], outsider: Any
) -> None:
    survey = make_survey(company)
    assert personas["agent"].client.get(_url(company, survey.public_id)).status_code == 403
    assert outsider.client.get(_url(company, survey.public_id)).status_code == 404
    assert not WidgetSettings.objects.for_company(company).exists()
