"""What the audit log records, from every door (web, /api/v1/, /v1/, the services), and that
an entry lives and dies with the transaction of its change."""

from __future__ import annotations

import base64
import json

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from audit.models import ActorKind, AuditAction, AuditEntry
from audit.services import SECRET_MARK, audit_record
from companies.models import Company, Membership, Role
from companies.services import (
    api_key_create,
    api_key_revoke,
    company_twilio_account_set,
    membership_change_role,
    membership_remove,
    team_invite_accept,
    team_invite_create,
    team_invite_revoke,
)
from conftest import PASSWORD, KeyPersona, Persona, add_member, make_user
from notifications.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_set_enabled,
    webhook_endpoint_update,
)
from responses.alerts import alert_rule_delete, alert_rule_save
from surveys.services.surveys import survey_create, survey_delete, survey_update

pytestmark = pytest.mark.django_db


def entries(company: Company, action: str | None = None) -> list[AuditEntry]:
    rows = AuditEntry.objects.for_company(company).order_by("created_at", "id")
    return list(rows.filter(action=action) if action else rows)


class Rollback(Exception):
    pass


# --- The same transaction ------------------------------------------------------------------


def test_a_committed_change_has_exactly_one_entry(company: Company) -> None:
    survey = survey_create(company=company, name="Checkout")
    survey_update(company=company, survey=survey, name="Checkout 2026")

    [entry] = entries(company, AuditAction.SURVEY_UPDATED)
    assert entry.changes == {"name": ["Checkout", "Checkout 2026"]}
    assert entry.target_type == "survey"
    assert entry.target_id == survey.public_id
    assert entry.actor_kind == ActorKind.SYSTEM  # no request: a system job or the CLI


def test_a_rolled_back_change_leaves_no_entry(company: Company) -> None:
    survey = survey_create(company=company, name="Checkout")
    seen_inside: list[int] = []

    def change_then_fail() -> None:
        with transaction.atomic():
            survey_update(company=company, survey=survey, name="Never")
            seen_inside.append(len(entries(company, AuditAction.SURVEY_UPDATED)))
            raise Rollback

    with pytest.raises(Rollback):
        change_then_fail()
    assert seen_inside == [1]  # written with the change…
    assert entries(company, AuditAction.SURVEY_UPDATED) == []  # …and gone with it


def test_a_refused_change_leaves_no_entry(company: Company) -> None:
    survey = survey_create(company=company, name="Checkout")
    with pytest.raises(Exception):  # noqa: B017, PT011  (the service's ValidationError)
        survey_update(company=company, survey=survey, name="")
    assert entries(company, AuditAction.SURVEY_UPDATED) == []


def test_an_unchanged_save_records_nothing(company: Company) -> None:
    survey = survey_create(company=company, name="Checkout")
    survey_update(company=company, survey=survey, name="Checkout")
    assert entries(company, AuditAction.SURVEY_UPDATED) == []


# --- Actors: member (web), API key (/api/v1/ and /v1/) -------------------------------------


def test_a_web_change_names_the_member_and_their_address(
    personas: dict[str, Persona], company: Company
) -> None:
    admin = personas[Role.ADMIN]
    url = reverse("companies:settings", kwargs={"company_slug": company.slug})
    data = {
        "name": "Acme Coffee Almaty",
        "industry": company.industry,
        "country": "",
        "time_zone": company.time_zone,
        "default_language": company.default_language,
        "sender_name": company.sender_name,
        "reply_to": "",
    }
    response = admin.client.post(url, data, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 302

    [entry] = entries(company, AuditAction.SETTINGS_UPDATED)
    assert entry.actor_kind == ActorKind.MEMBER
    assert entry.actor_user == admin.user
    assert entry.actor_label == admin.user.email
    assert entry.ip == "203.0.113.7"
    assert entry.changes == {"name": ["Acme Coffee", "Acme Coffee Almaty"]}


def test_an_api_change_names_the_key(api_owner: KeyPersona, company: Company) -> None:
    response = Client().post(
        "/api/v1/surveys/",
        json.dumps({"name": "From CI"}),
        content_type="application/json",
        REMOTE_ADDR="198.51.100.4",
        HTTP_AUTHORIZATION=f"Bearer {api_owner.key}",
    )
    assert response.status_code == 201, response.content

    [entry] = entries(company, AuditAction.SURVEY_CREATED)
    assert entry.actor_kind == ActorKind.API_KEY
    assert entry.actor_api_key == api_owner.api_key
    assert entry.actor_user is None
    assert f"nps_{api_owner.api_key.prefix}_" in entry.actor_label
    assert api_owner.key not in entry.actor_label  # never the secret
    assert entry.ip == "198.51.100.4"
    assert entry.changes["name"] == [None, "From CI"]


def test_a_delighted_api_change_names_the_key(company: Company) -> None:
    issued = api_key_create(company=company, name="delighted")
    auth = "Basic " + base64.b64encode(issued.key.encode()).decode()
    # The first /v1/ call makes the company's "Delighted" survey.
    response = Client().post(
        "/v1/people.json",
        json.dumps({"email": "ana@example.test", "delay": 3600}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert response.status_code == 201, response.content

    created = entries(company, AuditAction.SURVEY_CREATED)
    assert [(e.actor_kind, e.actor_api_key) for e in created] == [
        (ActorKind.API_KEY, issued.api_key)
    ]


# --- Each kind of change -------------------------------------------------------------------


def test_members_roles_and_invitations(company: Company, owner: Persona) -> None:
    user = add_member(company, "sam@acme.test", Role.AGENT)
    membership = Membership.objects.for_company(company).get(user=user)
    membership_change_role(company=company, membership=membership, role=Role.MANAGER)
    membership_remove(company=company, membership=membership)
    issued = team_invite_create(
        company=company, email="kim@acme.test", role="viewer", invited_by=None
    )
    team_invite_revoke(company=company, invite=issued.invite)
    team_invite_revoke(company=company, invite=issued.invite)  # twice: one entry
    second = team_invite_create(
        company=company, email="lee@acme.test", role="admin", invited_by=None
    )
    team_invite_accept(invite=second.invite, user=make_user("lee@acme.test"))

    got = [
        (e.action, e.target_label, e.changes)
        for e in entries(company)
        if e.action != AuditAction.SIGNED_IN  # the owner fixture signs in
    ]
    assert got == [
        (AuditAction.MEMBER_ROLE_CHANGED, "sam@acme.test", {"role": ["agent", "manager"]}),
        (AuditAction.MEMBER_REMOVED, "sam@acme.test", {"role": ["manager", None]}),
        (
            AuditAction.TEAM_INVITE_CREATED,
            "kim@acme.test",
            {"email": [None, "kim@acme.test"], "role": [None, "viewer"]},
        ),
        (AuditAction.TEAM_INVITE_REVOKED, "kim@acme.test", {}),
        (
            AuditAction.TEAM_INVITE_CREATED,
            "lee@acme.test",
            {"email": [None, "lee@acme.test"], "role": [None, "admin"]},
        ),
        (AuditAction.MEMBER_JOINED, "lee@acme.test", {"role": [None, "admin"]}),
    ]
    joined = entries(company, AuditAction.MEMBER_JOINED)[0]
    assert joined.actor_label == "lee@acme.test"  # the person accepting acts


def test_api_keys(company: Company) -> None:
    issued = api_key_create(company=company, name="CI", role=Role.VIEWER)
    api_key_revoke(company=company, api_key=issued.api_key)
    api_key_revoke(company=company, api_key=issued.api_key)

    created, revoked = entries(company)
    assert created.action == AuditAction.API_KEY_CREATED
    assert created.changes == {"name": [None, "CI"], "role": [None, "viewer"]}
    assert revoked.action == AuditAction.API_KEY_REVOKED
    assert revoked.target_id == issued.api_key.public_id
    assert issued.key not in json.dumps([created.changes, created.target_label])


def test_webhook_endpoints_without_their_secret(company: Company, monkeypatch) -> None:
    from notifications import http_client

    monkeypatch.setattr(http_client, "_getaddrinfo", lambda host, port: ["93.184.216.34"])
    issued = webhook_endpoint_create(
        company=company, url="https://hooks.example.com/nps", event_types=["response.created"]
    )
    endpoint = issued.endpoint
    webhook_endpoint_update(
        company=company,
        endpoint=endpoint,
        url="https://hooks.example.com/v2",
        event_types=["response.created"],
    )
    secret = webhook_endpoint_rotate_secret(company=company, endpoint=endpoint)
    webhook_endpoint_set_enabled(company=company, endpoint=endpoint, enabled=False)
    webhook_endpoint_delete(company=company, endpoint=endpoint)

    got = [(e.action, e.changes) for e in entries(company)]
    assert [action for action, _ in got] == [
        AuditAction.WEBHOOK_CREATED,
        AuditAction.WEBHOOK_UPDATED,
        AuditAction.WEBHOOK_SECRET_ROTATED,
        AuditAction.WEBHOOK_UPDATED,
        AuditAction.WEBHOOK_DELETED,
    ]
    assert got[1][1] == {"url": ["https://hooks.example.com/nps", "https://hooks.example.com/v2"]}
    assert got[3][1] == {"enabled": [True, False]}
    logged = json.dumps([e.changes for e in entries(company)])
    assert issued.secret not in logged
    assert secret not in logged


def test_alert_rules(company: Company) -> None:
    rule = alert_rule_save(company=company, name="Angry", category="detractor")
    alert_rule_save(
        company=company, rule=rule, name="Angry", slack_webhook_url="https://hooks.slack.com/x"
    )
    alert_rule_delete(company=company, rule=rule)

    created, updated, deleted = (
        e
        for e in entries(company)
        if e.action.startswith("alert_rule.") and e.target_id == rule.public_id
    )
    assert created.action == AuditAction.ALERT_RULE_CREATED
    assert created.changes["name"] == [None, "Angry"]
    assert updated.changes == {"slack_webhook_url": [SECRET_MARK, SECRET_MARK]}
    assert deleted.action == AuditAction.ALERT_RULE_DELETED


def test_survey_deleted_or_archived(company: Company) -> None:
    survey = survey_create(company=company, name="Old")
    assert survey_delete(company=company, survey=survey)
    assert [e.action for e in entries(company)] == [
        AuditAction.SURVEY_CREATED,
        AuditAction.SURVEY_DELETED,
    ]


def test_twilio_token_is_only_said_to_change(company: Company) -> None:
    sid = "AC" + "1" * 32
    company_twilio_account_set(company=company, account_sid=sid, auth_token="tok-SECRET-123")
    [entry] = entries(company, AuditAction.SMS_SETTINGS_UPDATED)
    assert entry.changes == {
        "twilio_account_sid": ["", sid],
        "twilio_auth_token_encrypted": [SECRET_MARK, SECRET_MARK],
    }
    assert "tok-SECRET-123" not in json.dumps(entry.changes)


def test_erasure_entry_for_the_gdpr_service(company: Company) -> None:
    """The shape data-subject erasure records: who and what kind, never the identifier."""
    entry = audit_record(
        company=company,
        action=AuditAction.PERSON_ERASED,
        target_type="person",
        changes={"identified_by": [None, "email"]},
    )
    assert (entry.target_id, entry.target_label) == ("", "")


def test_response_export_download_is_recorded(
    personas: dict[str, Persona], company: Company
) -> None:
    manager = personas[Role.MANAGER]
    url = reverse("responses:export-csv", kwargs={"company_slug": company.slug})
    response = manager.client.get(url + "?score=detractor")
    assert response.status_code == 200
    b"".join(response.streaming_content)  # type: ignore[attr-defined]

    [entry] = entries(company, AuditAction.EXPORT_DOWNLOADED)
    assert entry.target_type == "responses"
    assert entry.actor_user == manager.user
    assert entry.target_label.startswith(f"responses-{company.slug}-")


# --- Sign-ins ------------------------------------------------------------------------------


def test_a_sign_in_is_recorded_in_each_company_of_the_person(
    company: Company, other_company: Company
) -> None:
    user = add_member(company, "both@acme.test", Role.AGENT)
    Membership.objects.create(company=other_company, user=user, role=Role.VIEWER)
    client = Client()
    response = client.post(
        reverse("account_login"),
        {"login": "both@acme.test", "password": PASSWORD},
        REMOTE_ADDR="192.0.2.10",
    )
    assert response.status_code == 302

    for tenant in (company, other_company):
        [entry] = entries(tenant, AuditAction.SIGNED_IN)
        assert (entry.actor_user, entry.ip) == (user, "192.0.2.10")


def test_a_failed_sign_in_is_recorded_for_a_known_address_only(
    company: Company, other_company: Company
) -> None:
    add_member(company, "sam@acme.test", Role.AGENT)
    client = Client()
    before_other = len(entries(other_company))
    for login in ("SAM@acme.test", "nobody@nowhere.test"):
        response = client.post(reverse("account_login"), {"login": login, "password": "wrong-1"})
        assert response.status_code == 200  # the form again, with its error

    [entry] = entries(company, AuditAction.SIGN_IN_FAILED)
    assert entry.actor_label == "sam@acme.test"
    assert entry.actor_kind == ActorKind.MEMBER
    assert len(entries(other_company)) == before_other
    assert "nobody@nowhere.test" not in json.dumps(
        [
            (e.actor_label, e.target_label, e.changes)
            for e in AuditEntry.objects.unscoped(reason="test")
        ]
    )


def test_inbox_and_dashboard_settings(company: Company) -> None:
    from dashboards.insights import dashboard_settings_update
    from responses.followups import inbox_settings_update

    inbox_settings_update(company=company, sla_hours=24, round_robin=False)
    inbox_settings_update(company=company, sla_hours=24, round_robin=False)  # unchanged
    dashboard_settings_update(company=company, revenue_property="mrr", peer_benchmark=False)

    got = [(e.target_type, e.changes) for e in entries(company, AuditAction.SETTINGS_UPDATED)]
    assert got[0] == ("inboxsettings", {"sla_hours": [None, 24], "round_robin": [True, False]})
    assert got[1][0] == "dashboardsettings"
    assert got[1][1]["revenue_property"] == ["", "mrr"]
    assert len(got) == 2
