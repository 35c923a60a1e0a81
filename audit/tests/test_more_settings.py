"""More settings in the audit log (issue 16, part 4): widget settings and key, recurring
survey (autopilot) settings, an API key's Delighted survey and the start of a Delighted
import. The services are called as a job would (the system acts); the request's actor is
proven once for all by the recording tests."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import ActorKind, AuditAction, AuditEntry
from companies.models import Company
from companies.services import api_key_create
from delighted_compat.api.services import api_key_bind_survey
from delighted_compat.importer import delighted_import_create, delighted_import_start
from surveys.models import Survey
from surveys.services.autopilot import autopilot_configure
from surveys.services.surveys import survey_create
from widget.services import widget_key_rotate, widget_settings_update

pytestmark = pytest.mark.django_db


def entries(company: Company, action: str) -> list[AuditEntry]:
    rows = AuditEntry.objects.for_company(company).filter(action=action)
    return list(rows.order_by("created_at", "id"))


@pytest.fixture
def survey(company: Company) -> Survey:
    return survey_create(company=company, name="Checkout")


def test_widget_settings_and_key_rotation_are_audited(company: Company, survey: Survey) -> None:
    widget_settings_update(
        company=company, survey=survey, enabled=True, allowed_origins=["https://shop.test"]
    )
    widget_settings_update(company=company, survey=survey, enabled=True)  # unchanged: no line
    widget_settings_update(company=company, survey=survey, delay_seconds=30)
    widget_key_rotate(company=company, survey=survey)

    first, second = entries(company, AuditAction.WIDGET_SETTINGS_UPDATED)
    assert first.changes["enabled"] == [False, True]
    assert first.changes["allowed_origins"] == [[], ["https://shop.test"]]
    assert list(second.changes) == ["delay_seconds"]
    assert (first.target_type, first.target_id, first.target_label) == (
        "widgetsettings",
        survey.public_id,
        "Checkout",
    )
    [rotated] = entries(company, AuditAction.WIDGET_KEY_ROTATED)
    assert rotated.target_id == survey.public_id
    assert rotated.actor_kind == ActorKind.SYSTEM


def test_autopilot_settings_are_audited(company: Company, survey: Survey) -> None:
    values: dict[str, Any] = {"channel": "email", "cadence_days": 90, "first_delay_days": 0}
    program = autopilot_configure(company=company, survey=survey, active=True, **values)
    autopilot_configure(company=company, survey=survey, active=True, **values)  # no line
    autopilot_configure(company=company, survey=survey, active=False, **values)

    created, turned_off = entries(company, AuditAction.AUTOPILOT_CONFIGURED)
    assert created.changes == {
        "active": [None, True],
        "cadence_days": [None, 90],
        "first_delay_days": [None, 0],
    }
    assert turned_off.changes == {"active": [True, False]}
    assert (created.target_type, created.target_id) == ("autopilotprogram", program.public_id)


def test_binding_an_api_key_to_a_survey_is_audited(company: Company, survey: Survey) -> None:
    issued = api_key_create(company=company, name="delighted")
    api_key_bind_survey(company=company, api_key=issued.api_key, survey=survey)
    api_key_bind_survey(company=company, api_key=issued.api_key, survey=survey)  # no line
    api_key_bind_survey(company=company, api_key=issued.api_key, survey=None)

    bound, unbound = entries(company, AuditAction.API_KEY_SURVEY_BOUND)
    assert bound.changes == {"survey": [None, "Checkout"]}
    assert unbound.changes == {"survey": ["Checkout", None]}
    assert bound.target_id == issued.api_key.public_id
    assert issued.key not in str(bound.changes) + bound.target_label


def test_starting_a_delighted_import_is_audited(settings, tmp_path, company: Company) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    upload = SimpleUploadedFile(
        "responses.csv", b"Response ID,Score,Comment,Created At,Email\n1,9,Fine,1767645000,a@x.test"
    )
    imp = delighted_import_create(company=company, upload=upload)
    assert entries(company, AuditAction.DELIGHTED_IMPORT_STARTED) == []
    delighted_import_start(company=company, imp=imp, in_worker=False)

    [started] = entries(company, AuditAction.DELIGHTED_IMPORT_STARTED)
    assert (started.target_type, started.target_id) == ("delightedimport", imp.public_id)
    assert started.target_label == "responses.csv"
    assert started.changes["kind"] == [None, "responses"]
    assert started.changes["survey"][0] is None
    assert "a@x.test" not in str(started.changes)
