"""Follow-ups: SLA and due time, overdue and the escalation email (frozen time), status
changes with reasons, reopening, notes, assignment rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from companies.models import Membership, Role
from conftest import add_member
from responses.alerts import alerts_evaluate
from responses.followups import (
    followup_add_note,
    followup_assign,
    followup_set_status,
    followups_escalate_overdue,
    inbox_settings_update,
    sla_hours_of,
)
from responses.models import Followup, FollowupEvent, FollowupEventKind, FollowupStatus
from responses.services import response_record
from responses.tasks import alert_escalate_overdue
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def open_followup(company, score: int = 2, email: str = "ann@customer.test") -> Followup:
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company, email=email))
    response = response_record(
        invitation=invitation, survey=survey, score=score, channel="email", language="en"
    )
    alerts_evaluate(company=company, response_id=response.pk)
    return Followup.objects.for_company(company).get(response=response)


@pytest.fixture
def admin(company):
    return add_member(company, "admin@acme.test", Role.ADMIN)


@pytest.fixture
def agent(company):
    return add_member(company, "agent@acme.test", Role.AGENT)


def test_due_time_is_48_hours_by_default(company, settings):
    assert settings.FOLLOWUP_SLA_HOURS == 48
    with time_machine.travel(START, tick=False):
        followup = open_followup(company)
    assert followup.due_at == START + timedelta(hours=48)


def test_a_company_sets_its_own_sla(company):
    assert sla_hours_of(company=company) == 48  # no row needed to read
    inbox_settings_update(company=company, sla_hours=4, round_robin=True)
    with time_machine.travel(START, tick=False):
        followup = open_followup(company)
    assert followup.due_at == START + timedelta(hours=4)
    with pytest.raises(ValidationError):
        inbox_settings_update(company=company, sla_hours=0, round_robin=True)


def test_a_company_on_the_default_follows_the_installations_setting(company, agent, settings):
    open_followup(company)  # round-robin wrote the settings row (the agent's turn)
    settings.FOLLOWUP_SLA_HOURS = 24
    with time_machine.travel(START, tick=False):
        followup = open_followup(company, email="bob@customer.test")
    assert followup.due_at == START + timedelta(hours=24)


def test_overdue_is_marked_and_admins_emailed_once(company, admin, agent, mailoutbox):
    with time_machine.travel(START, tick=False):
        followup = open_followup(company)
    mailoutbox.clear()  # the alert itself
    with time_machine.travel(START + timedelta(hours=47, minutes=59), tick=False):
        assert followups_escalate_overdue() == 0
        assert not Followup.objects.for_company(company).get().is_overdue
    later = START + timedelta(hours=48, minutes=1)
    with time_machine.travel(later, tick=False):
        assert alert_escalate_overdue() == 1  # the beat task
        assert followups_escalate_overdue() == 0  # once per follow-up
        followup.refresh_from_db()
        assert followup.is_overdue
    assert followup.overdue_at == later
    assert followup.escalated_at == later
    # One batch message (same content) to both.
    assert sorted(to for m in mailoutbox for to in m.to) == ["admin@acme.test", "owner@acme.test"]
    assert "Overdue" in mailoutbox[0].subject
    assert (
        FollowupEvent.objects.for_company(company).filter(kind=FollowupEventKind.OVERDUE).count()
        == 1
    )


def test_resolved_follow_ups_are_not_escalated(company, admin, agent):
    with time_machine.travel(START, tick=False):
        followup = open_followup(company)
        followup_set_status(
            company=company,
            followup=followup,
            status=FollowupStatus.RESOLVED,
            resolution="fixed",
            actor=agent,
        )
    with time_machine.travel(START + timedelta(days=5), tick=False):
        assert followups_escalate_overdue() == 0


def test_the_sweep_works_across_companies(company, other_company):
    with time_machine.travel(START, tick=False):
        open_followup(company)
        open_followup(other_company)
    with time_machine.travel(START + timedelta(days=3), tick=False):
        assert followups_escalate_overdue() == 2


def test_status_flow_resolve_needs_a_reason_and_reopen_restarts_the_sla(company, agent):
    with time_machine.travel(START, tick=False):
        followup = open_followup(company)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        followup_set_status(
            company=company, followup=followup, status=FollowupStatus.IN_PROGRESS, actor=agent
        )
        followup_set_status(
            company=company, followup=followup, status=FollowupStatus.WAITING, actor=agent
        )
        with pytest.raises(ValidationError):
            followup_set_status(
                company=company, followup=followup, status=FollowupStatus.RESOLVED, actor=agent
            )
        followup = followup_set_status(
            company=company,
            followup=followup,
            status=FollowupStatus.RESOLVED,
            resolution="contacted",
            actor=agent,
        )
    assert followup.resolved_at == START + timedelta(hours=1)
    reopened_at = START + timedelta(days=10)
    with time_machine.travel(reopened_at, tick=False):
        followup = followup_set_status(
            company=company, followup=followup, status=FollowupStatus.IN_PROGRESS, actor=agent
        )
    assert (followup.resolution, followup.resolved_at) == ("", None)
    assert followup.due_at == reopened_at + timedelta(hours=48)
    history = [
        (e.data["from"], e.data["to"], e.actor)
        for e in FollowupEvent.objects.for_company(company).order_by("pk")
        if e.kind == FollowupEventKind.STATUS
    ]
    assert history == [
        ("new", "in_progress", agent),
        ("in_progress", "waiting", agent),
        ("waiting", "resolved", agent),
        ("resolved", "in_progress", agent),
    ]
    last = FollowupEvent.objects.for_company(company).filter(kind="status").order_by("pk").last()
    assert last is not None
    assert last.data["reopened"] is True


def test_notes_and_assignment_leave_history_with_who_and_when(company, agent):
    with time_machine.travel(START, tick=False):
        followup = open_followup(company)
    member = Membership.objects.for_company(company).get(user=agent)
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        followup_assign(company=company, followup=followup, assignee=None, actor=agent)
        followup_assign(company=company, followup=followup, assignee=member, actor=agent)
        followup_add_note(company=company, followup=followup, body="Called, no answer", actor=agent)
    events = list(FollowupEvent.objects.for_company(company).order_by("pk"))[-3:]
    assert [(e.kind, e.actor, e.created_at) for e in events] == [
        ("assigned", agent, START + timedelta(minutes=5)),
        ("assigned", agent, START + timedelta(minutes=5)),
        ("note", agent, START + timedelta(minutes=5)),
    ]
    assert events[2].body == "Called, no answer"
    with pytest.raises(ValidationError):
        followup_add_note(company=company, followup=followup, body="   ", actor=agent)


def test_viewers_and_other_companies_members_cannot_be_assigned(company, other_company, agent):
    followup = open_followup(company)
    viewer = Membership.objects.create(
        company=company, user=add_member(other_company, "v@acme.test", Role.VIEWER), role="viewer"
    )
    outsider = Membership.objects.for_company(other_company).get(role=Role.OWNER)
    for who in (viewer, outsider):
        with pytest.raises(ValidationError):
            followup_assign(company=company, followup=followup, assignee=who, actor=agent)


def test_round_robin_can_be_switched_off(company, agent):
    inbox_settings_update(company=company, sla_hours=48, round_robin=False)
    assert open_followup(company).assignee is None


def test_an_escalation_nothing_could_send_is_tried_again_next_sweep(
    company, admin, agent, monkeypatch
):
    from notifications.transport import TransientSendError
    from responses import followups

    with time_machine.travel(START, tick=False):
        followup = open_followup(company)

    def outage(**kwargs: object) -> None:
        raise TransientSendError("provider down", deliveries=[])

    with time_machine.travel(START + timedelta(days=3), tick=False):
        monkeypatch.setattr(followups, "_escalation_email", outage)
        assert followups_escalate_overdue() == 0
        followup.refresh_from_db()
        assert followup.escalated_at is None  # nothing went out: not marked as escalated
        monkeypatch.undo()
        assert followups_escalate_overdue() == 1
        assert followups_escalate_overdue() == 0
