"""Every export and erasure of a person is in the audit log, in the transaction of the change,
with the right actor, from each door (web, /api/v1/, /v1/people delete); the entry names the
kind of identifier only, never the identifier or anything else about the person."""

from __future__ import annotations

import base64
import json

import pytest
from django.core import serializers
from django.test import Client
from django.urls import reverse

from audit.models import ActorKind, AuditAction, AuditEntry
from companies.models import Company
from privacy import services as privacy_services
from privacy.models import PersonalDataRequest
from privacy.tests.helpers import EMAIL, EXTERNAL_ID, PHONE, SECRETS, person_everywhere
from surveys.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _entries(company: Company) -> list[AuditEntry]:
    """The entries about people (the personas' sign-ins are in the log too)."""
    rows = AuditEntry.objects.for_company(company).filter(
        action__in=[AuditAction.PERSON_EXPORTED, AuditAction.PERSON_ERASED]
    )
    return list(rows.order_by("created_at", "id"))


def _audit_table_text() -> str:
    """The whole audit table (every company), as text: what a leak would be found in."""
    rows = AuditEntry.objects.unscoped(reason="test: the whole table is searched").all()
    return serializers.serialize("json", rows)


def _assert_no_personal_data() -> None:
    text = _audit_table_text()
    for secret in (*SECRETS, "7011234567", "701 123 45 67"):
        assert secret not in text, secret


def _url(company: Company) -> str:
    return reverse("privacy:personal-data", kwargs={"company_slug": company.slug})


def test_web_export_and_erasure_are_audited_by_the_member(company, owner):
    person_everywhere(company)
    exported = owner.client.post(_url(company), {"kind": "email", "value": EMAIL, "export": "1"})
    assert exported.status_code == 200
    erased = owner.client.post(
        _url(company),
        {"kind": "external_id", "value": EXTERNAL_ID, "confirm": "on", "erase": "1"},
    )
    assert erased.status_code == 302

    export, erasure = _entries(company)
    assert (export.action, erasure.action) == (
        AuditAction.PERSON_EXPORTED,
        AuditAction.PERSON_ERASED,
    )
    for entry, kind in ((export, "email"), (erasure, "external_id")):
        assert entry.actor_kind == ActorKind.MEMBER
        assert entry.actor_user == owner.user
        assert entry.ip == "127.0.0.1"
        assert (entry.target_type, entry.target_id, entry.target_label) == ("person", "", "")
        assert entry.changes == {"identifier_kind": [None, kind]}
    _assert_no_personal_data()


def test_api_export_and_erasure_are_audited_by_the_key(client, company, api_owner):
    person_everywhere(company)
    for path, body in (("export", {"email": EMAIL}), ("erase", {"phone": "+7 701 123 45 67"})):
        response = client.post(
            f"/api/v1/people/{path}/",
            data=json.dumps(body),
            content_type="application/json",
            **api_owner.headers,
        )
        assert response.status_code == 200

    export, erasure = _entries(company)
    assert (export.action, erasure.action) == (
        AuditAction.PERSON_EXPORTED,
        AuditAction.PERSON_ERASED,
    )
    assert {e.actor_api_key_id for e in (export, erasure)} == {api_owner.api_key.pk}
    assert {e.actor_kind for e in (export, erasure)} == {ActorKind.API_KEY}
    assert erasure.changes == {"identifier_kind": [None, "phone"]}
    assert erasure.target_type == "person"
    _assert_no_personal_data()


def test_v1_people_delete_is_audited_by_the_key(company, api_owner):
    person_everywhere(company)
    contact = Contact.objects.for_company(company).get(email=EMAIL)
    token = base64.b64encode(f"{api_owner.key}:".encode()).decode()
    response = Client().delete(
        f"/v1/people/{contact.public_id}", HTTP_AUTHORIZATION=f"Basic {token}"
    )
    assert response.status_code == 202

    [erasure] = _entries(company)
    assert erasure.action == AuditAction.PERSON_ERASED
    assert (erasure.actor_kind, erasure.actor_api_key_id) == (
        ActorKind.API_KEY,
        api_owner.api_key.pk,
    )
    assert erasure.target_type == "person"
    assert erasure.target_id == ""
    _assert_no_personal_data()
    assert contact.public_id not in _audit_table_text()


def test_a_failed_erasure_leaves_no_audit_entry(company, owner, monkeypatch):
    person_everywhere(company)

    def broken(**_kwargs: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(privacy_services, "outbox_erase", broken)
    with pytest.raises(RuntimeError):
        owner.client.post(
            _url(company), {"kind": "email", "value": EMAIL, "confirm": "on", "erase": "1"}
        )
    assert _entries(company) == []
    assert not PersonalDataRequest.objects.for_company(company).exists()
    assert Contact.objects.for_company(company).filter(phone=PHONE).exists()
