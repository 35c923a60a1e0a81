"""Recurring surveys (Autopilot): programme, members, the dispatcher through the send path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from companies.models import Company
from notifications.models import Channel, OutboxMessage, SuppressionReason
from notifications.services import suppression_add
from surveys import tasks
from surveys.models import (
    AutopilotJoin,
    AutopilotMember,
    AutopilotProgram,
    AutopilotStop,
    Contact,
    ContactImport,
    ImportStatus,
    Invitation,
    InvitationStatus,
    Survey,
    SurveyStatus,
)
from surveys.selectors import autopilot_config_get, autopilot_members_list
from surveys.services import autopilot
from surveys.services.autopilot import (
    autopilot_configure,
    autopilot_dispatch_due,
    autopilot_import_join,
    autopilot_joins_run,
    autopilot_member_add,
    autopilot_member_remove,
    autopilot_members_add_audience,
)
from surveys.services.contacts import contact_delete
from surveys.services.surveys import survey_set_status
from surveys.services.triggers import invitation_trigger
from surveys.tests.sending_factories import active_survey, contacts
from tests.conftest import (  # noqa: F401 (the worker fixtures live there)
    CeleryWorker,
    _celery_worker_session,
    celery_worker_process,
)
from tests.waits import WAIT_SECONDS

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

CaptureOnCommit = Callable[..., AbstractContextManager[Any]]


def _program(
    company: Company, survey: Survey, channel: str = "email", **fields: Any
) -> AutopilotProgram:
    values = {"active": True, "cadence_days": 90, "first_delay_days": 0, **fields}
    return autopilot_configure(company=company, survey=survey, channel=channel, **values)


def _person(company: Company, n: int = 0, **fields: Any) -> Contact:
    values = {"email": f"member{n}@example.com", "name": f"Member {n}", **fields}
    return Contact.objects.create(company=company, **values)


def _invitations(company: Company, **filters: Any) -> Any:
    return Invitation.objects.for_company(company).filter(**filters)


def _recipients() -> list[str]:
    return sorted(address for message in mail.outbox for address in message.to)


def test_configuration_is_validated_and_read_back(company: Company) -> None:
    survey = active_survey(company)
    assert autopilot_config_get(company=company, survey=survey, channel="email") is None
    with pytest.raises(ValidationError) as error:
        autopilot_configure(
            company=company,
            survey=survey,
            channel="whatsapp",
            active=True,
            cadence_days=45,
            first_delay_days=-1,
        )
    assert "channel" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        _program(company, survey, cadence_days=45, first_delay_days=400)
    assert set(error.value.message_dict) == {"cadence_days", "first_delay_days"}
    program = _program(company, survey, cadence_days=180, first_delay_days=7)
    again = _program(company, survey, active=False, cadence_days=30)
    assert again.pk == program.pk
    read = autopilot_config_get(company=company, survey=survey, channel="email")
    assert read is not None
    assert (read.active, read.cadence_days, read.first_delay_days) == (False, 30, 0)


def test_a_due_ask_goes_out_once_through_the_send_path_and_comes_back_every_cadence(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    survey = active_survey(company)
    _program(company, survey, cadence_days=90, first_delay_days=7)
    person = _person(company)
    with time_machine.travel(START, tick=False) as clock:
        member, created = autopilot_member_add(
            company=company,
            survey=survey,
            channel="email",
            contact=person,
            properties={"plan": "gold"},
        )
        assert created
        assert member.next_ask_at == START + timedelta(days=7)
        with django_capture_on_commit_callbacks(execute=True):
            assert autopilot_dispatch_due().asked == 0  # the first delay runs
        clock.shift(timedelta(days=7))
        with django_capture_on_commit_callbacks(execute=True):
            assert autopilot_dispatch_due().asked == 1
        (invitation,) = _invitations(company)
        assert invitation.status == InvitationStatus.SENT  # sent by the real send task
        assert invitation.properties == {"plan": "gold"}
        assert _recipients() == ["member0@example.com"]
        member.refresh_from_db()
        assert member.last_invitation_id == invitation.pk
        assert member.next_ask_at == START + timedelta(days=97)
        # A repeated or late wake asks nobody again.
        with django_capture_on_commit_callbacks(execute=True):
            assert autopilot_dispatch_due().asked == 0
            tasks.dispatch_autopilot()
        clock.shift(timedelta(days=89))
        with django_capture_on_commit_callbacks(execute=True):
            assert autopilot_dispatch_due().asked == 0
        assert len(mail.outbox) == 1
        # One cadence later: asked again; its own previous ask does not throttle it (the
        # survey's window is 90 days too).
        clock.shift(timedelta(days=1))
        with django_capture_on_commit_callbacks(execute=True):
            assert autopilot_dispatch_due().asked == 1
        assert len(mail.outbox) == 2
        assert _invitations(company, status=InvitationStatus.SENT).count() == 2
        member.refresh_from_db()
        assert member.next_ask_at == START + timedelta(days=187)


def test_a_shorter_cadence_than_the_throttle_window_is_kept(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    survey = active_survey(company)  # throttle window: 90 days
    _program(company, survey, cadence_days=30)
    with time_machine.travel(START, tick=False) as clock:
        person = _person(company)
        autopilot_member_add(company=company, survey=survey, channel="email", contact=person)
        for _cycle in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                assert autopilot_dispatch_due().asked == 1
            clock.shift(timedelta(days=30))
    assert len(mail.outbox) == 3


def test_throttling_applies_across_channels_and_moves_the_next_ask_on(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    survey = active_survey(company)
    _program(company, survey, "email")
    _program(company, survey, "sms")
    both = _person(company, 1, phone="+77011234501")
    texted = _person(company, 2, email=None, phone="+77011234502")
    with time_machine.travel(START - timedelta(days=30), tick=False):
        for channel, person in (("email", both), ("sms", both), ("sms", texted)):
            autopilot_member_add(company=company, survey=survey, channel=channel, contact=person)
    # Surveyed by a transactional trigger (another channel) a week before its ask.
    with time_machine.travel(START - timedelta(days=7), tick=False):
        invitation_trigger(company=company, survey=survey, phone=texted.phone, channel=Channel.SMS)
    with time_machine.travel(START, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            outcome = autopilot_dispatch_due()
        # Email asked first; the SMS programme then finds both contacts surveyed recently.
        assert (outcome.asked, outcome.throttled) == (1, 2)
        (asked,) = _invitations(company, contact=both)
        assert asked.channel == "email"
        sms_members = AutopilotMember.objects.for_company(company).filter(program__channel="sms")
        assert {m.next_ask_at for m in sms_members} == {START + timedelta(days=90)}
        assert {m.last_invitation_id for m in sms_members} == {None}


def test_unsubscribing_stops_the_programme(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    survey = active_survey(company)
    _program(company, survey)
    leaving, staying = _person(company, 1), _person(company, 2)
    for person in (leaving, staying):
        autopilot_member_add(company=company, survey=survey, channel="email", contact=person)
    with django_capture_on_commit_callbacks(execute=True):
        suppression_add(
            company=company,
            channel="email",
            address="MEMBER1@example.com",
            reason=SuppressionReason.UNSUBSCRIBED,
        )
    member = AutopilotMember.objects.for_company(company).get(contact=leaving)
    assert (member.next_ask_at, member.stopped) == (None, AutopilotStop.SUPPRESSED)
    with django_capture_on_commit_callbacks(execute=True):
        assert autopilot_dispatch_due().asked == 1
    assert _recipients() == ["member2@example.com"]


def test_a_suppression_that_sent_no_signal_stops_the_member_when_due(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Suppressions written without the signal (an import of bounces) are caught at the ask."""
    survey = active_survey(company)
    _program(company, survey)
    person = _person(company)
    autopilot_member_add(company=company, survey=survey, channel="email", contact=person)
    suppression_add(  # its signal is captured, never sent
        company=company, channel="email", address=person.email or "", reason="bounced"
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = autopilot_dispatch_due()
    assert (outcome.asked, outcome.stopped) == (0, 1)
    assert not _invitations(company).exists()
    assert AutopilotMember.objects.for_company(company).get().stopped == "suppressed"
    # Added again (the API's add): it starts over, and is stopped again while suppressed.
    member, created = autopilot_member_add(
        company=company, survey=survey, channel="email", contact=person
    )
    assert not created
    assert (member.stopped, member.next_ask_at is not None) == ("", True)


def test_leaving_cancels_the_waiting_ask_and_deleting_the_contact_ends_it(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    survey = active_survey(company)
    _program(company, survey)
    leaving, deleted = _person(company, 1), _person(company, 2)
    for person in (leaving, deleted):
        autopilot_member_add(company=company, survey=survey, channel="email", contact=person)
    with django_capture_on_commit_callbacks(execute=False):  # send messages lost
        assert autopilot_dispatch_due().asked == 2
    waiting = _invitations(company, contact=leaving).get()
    # Say it waits for quiet hours: back in scheduled.
    _invitations(company, pk=waiting.pk).update(status=InvitationStatus.SCHEDULED)
    assert autopilot_member_remove(company=company, survey=survey, channel="email", contact=leaving)
    assert not autopilot_member_remove(
        company=company, survey=survey, channel="email", contact=leaving
    )
    waiting.refresh_from_db()
    assert waiting.status == InvitationStatus.CANCELLED
    contact_delete(company=company, contact=deleted)
    assert not AutopilotMember.objects.for_company(company).exists()
    with time_machine.travel(timezone.now() + timedelta(days=91)):
        assert autopilot_dispatch_due().asked == 0
    assert Contact.objects.for_company(company).filter(pk=leaving.pk).exists()


def test_an_inactive_programme_or_survey_waits_then_asks_once(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    survey = active_survey(company)
    _program(company, survey, active=False)
    autopilot_member_add(company=company, survey=survey, channel="email", contact=_person(company))
    assert autopilot_dispatch_due().asked == 0
    _program(company, survey, active=True)
    survey_set_status(company=company, survey=survey, status=SurveyStatus.PAUSED)
    assert autopilot_dispatch_due().asked == 0
    survey_set_status(company=company, survey=survey, status=SurveyStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        assert autopilot_dispatch_due().asked == 1
        assert autopilot_dispatch_due().asked == 0
    assert len(mail.outbox) == 1


def test_member_add_replaces_properties_and_needs_a_programme_and_an_address(
    company: Company, other_company: Company
) -> None:
    survey = active_survey(company)
    person = _person(company)
    with pytest.raises(ValidationError) as error:
        autopilot_member_add(company=company, survey=survey, channel="email", contact=person)
    assert "channel" in error.value.message_dict
    _program(company, survey, "sms")
    with pytest.raises(ValidationError) as error:
        autopilot_member_add(company=company, survey=survey, channel="sms", contact=person)
    assert "phone" in error.value.message_dict
    _program(company, survey, "email")
    first, created = autopilot_member_add(
        company=company, survey=survey, channel="email", contact=person, properties={"a": "1"}
    )
    second, created_again = autopilot_member_add(
        company=company, survey=survey, channel="email", contact=person, properties={"b": 2}
    )
    assert (created, created_again, second.pk) == (True, False, first.pk)
    assert second.properties == {"b": 2}
    assert second.next_ask_at == first.next_ask_at  # the schedule is kept
    outsider = _person(other_company)
    with pytest.raises(ValueError, match="another company"):
        autopilot_member_add(company=company, survey=survey, channel="email", contact=outsider)


def test_members_from_an_audience_and_from_an_import(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    survey = active_survey(company)
    program = _program(company, survey, first_delay_days=3)
    gold = [_person(company, n, properties={"plan": "gold"}) for n in range(3)]
    _person(company, 9, properties={"plan": "free"})
    _person(company, 8, email=None, phone="+77011234508", properties={"plan": "gold"})
    autopilot_member_add(company=company, survey=survey, channel="email", contact=gold[0])
    with django_capture_on_commit_callbacks(execute=True):  # the join's worker, woken
        segment = autopilot_members_add_audience(
            company=company,
            program=program,
            audience={"filters": [{"property": "plan", "op": "eq", "value": "gold"}]},
        )
    segment.refresh_from_db()
    assert (segment.added, segment.already, segment.no_address) == (2, 1, 1)
    assert segment.done_at is not None
    members = autopilot_members_list(company=company, survey=survey, channel="email")
    assert [m.contact for m in members] == gold
    # An import's contacts join once it has finished.
    with time_machine.travel(START, tick=False) as clock:
        contact_import = ContactImport.objects.create(
            company=company,
            file_name="people.csv",
            status=ImportStatus.RUNNING,
            started_at=timezone.now(),
        )
        join = autopilot_import_join(
            company=company, program=program, contact_import=contact_import
        )
        clock.shift(timedelta(seconds=1))
        imported = [_person(company, 20 + n) for n in range(2)]
        gold[1].save()  # updated by the import: already a member
        assert autopilot_joins_run() == 0  # still running
        clock.shift(timedelta(seconds=1))
        ContactImport.objects.for_company(company).filter(pk=contact_import.pk).update(
            status=ImportStatus.DONE, finished_at=timezone.now()
        )
        clock.shift(timedelta(seconds=1))
        _person(company, 30)  # after the import
        assert autopilot_joins_run() == 2
        assert autopilot_joins_run() == 0
    join = AutopilotJoin.objects.for_company(company).get(pk=join.pk)
    assert (join.added, join.done_at is not None) == (2, True)
    joined = {m.contact_id for m in AutopilotMember.objects.for_company(company)}
    assert {c.pk for c in imported} <= joined
    assert len(joined) == 5


def test_two_concurrent_dispatchers_ask_each_member_once(
    transactional_db: None, company: Company
) -> None:
    survey = active_survey(company)
    program = _program(company, survey)
    people = contacts(company, 40)
    AutopilotMember.objects.bulk_create(
        AutopilotMember(company=company, program=program, contact=c, next_ask_at=timezone.now())
        for c in people
    )
    barrier = threading.Barrier(2)
    asked: list[int] = []
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            barrier.wait()
            asked.append(autopilot_dispatch_due(batch_size=7).asked)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_SECONDS)
    assert not errors, errors
    assert sum(asked) == 40
    assert _recipients() == sorted(c.email or "" for c in people)
    assert _invitations(company).count() == 40
    assert set(_invitations(company).values_list("status", flat=True)) == {InvitationStatus.SENT}


def test_the_dispatcher_costs_the_same_queries_per_batch(company: Company) -> None:
    """Query count does not grow with the members in a batch (send tasks not run here).
    On PostgreSQL: elsewhere each asked member's link is its own UPDATE."""
    if connection.vendor != "postgresql":
        pytest.skip("the constant-query writes are PostgreSQL's")
    survey = active_survey(company)
    program = _program(company, survey)

    def queries_for(count: int, prefix: str) -> int:
        people = contacts(company, count, prefix=prefix, phone=None)
        # Half surveyed recently, one suppressed, one without... all on one batch.
        AutopilotMember.objects.bulk_create(
            AutopilotMember(
                company=company,
                program=program,
                contact=c,
                next_ask_at=timezone.now(),
                properties={"n": i},
            )
            for i, c in enumerate(people)
        )
        suppression_add(
            company=company, channel="email", address=people[0].email or "", reason="bounced"
        )
        with CaptureQueriesContext(connection) as queries:
            outcome = autopilot_dispatch_due(batch_size=1000)
        assert outcome.asked == count - 1
        return len(queries.captured_queries)

    assert queries_for(3, "small") == queries_for(60, "large")


def test_due_asks_go_out_once_through_a_real_worker(
    celery_worker_process: CeleryWorker,  # noqa: F811 (the imported fixture)
    company: Company,
) -> None:
    """The periodic task woken three times in a row (a repeated beat, a late message): the
    worker asks each due member once, and its send tasks deliver each ask once (the worker's
    mail goes to the development outbox)."""
    OutboxMessage.objects.all().delete()
    survey = active_survey(company)
    program = _program(company, survey)
    people = contacts(company, 12, prefix="worker")
    AutopilotMember.objects.bulk_create(
        AutopilotMember(company=company, program=program, contact=c, next_ask_at=timezone.now())
        for c in people
    )
    for _wake in range(3):
        tasks.dispatch_autopilot.delay()
    sent = _invitations(company, status=InvitationStatus.SENT)
    celery_worker_process.wait_for(lambda: sent.count() == 12, what="every ask to be sent")
    assert _invitations(company).count() == 12
    recipients: list[str] = []
    for message in OutboxMessage.objects.all():
        recipients += [message.to] if isinstance(message.to, str) else message.to
    assert sorted(recipients) == sorted(str(c.email) for c in people)


def test_a_large_segment_joins_in_chunks_and_resumes(company: Company, monkeypatch: Any) -> None:
    """A join is done a chunk per transaction; a run that stops (its chunk budget spent, or
    its worker dead) leaves the join where it was, and the next run continues from there."""
    monkeypatch.setattr(autopilot, "ADD_CHUNK_SIZE", 4)
    survey = active_survey(company)
    program = _program(company, survey)
    people = contacts(company, 10)
    join = autopilot_members_add_audience(company=company, program=program, audience={"all": True})
    assert autopilot_joins_run(max_chunks=2) == 8
    join.refresh_from_db()
    assert (join.after, join.added, join.done_at) == (people[7].pk, 8, None)
    assert autopilot_joins_run(max_chunks=2) == 2
    join.refresh_from_db()
    assert (join.added, join.done_at is not None) == (10, True)
    assert AutopilotMember.objects.for_company(company).count() == 10
    assert autopilot_joins_run() == 0
