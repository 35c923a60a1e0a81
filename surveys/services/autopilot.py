"""Recurring surveys (Delighted's Autopilot): a survey's programme per channel, its members,
and the dispatcher that asks each member when due.

What is owed lives in the member rows: ``next_ask_at`` is the next ask, found through a
partial index per programme, so a million members cost nothing until they are due. The
dispatcher (``autopilot_dispatch_due``, beat every few seconds) claims due members in
batches with ``SELECT … FOR UPDATE SKIP LOCKED`` and, in the same transaction, creates
their invitations (queued, handed to the ordinary send path: suppressions, quiet hours and
the ledger apply there) and moves their next ask on by the cadence. A repeated, late or
concurrent run finds nothing due any more, so no member is asked twice for one due time.

A member whose contact was surveyed recently (any survey of the same kind, any channel:
the throttle window, at most the cadence) is skipped and its next ask moves on; a
suppressed address (unsubscribed, bounced, STOP) stops the member; removing the member or
deleting the contact ends it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.models import Company, User
from companies.tenancy import tenant_update_per_row
from companies.wake import wake
from surveys.models import (
    AUTOPILOT_CADENCES,
    AUTOPILOT_MAX_FIRST_DELAY_DAYS,
    AutopilotChannel,
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
from surveys.services.contacts import contact_clean
from surveys.services.invitations import (
    CHANNEL_ADDRESS_FIELD,
    THROTTLE_STATUSES,
    answered_uninvited_contact_ids,
    contact_address,
    events_add,
    invitation_new,
    sends_wake,
    suppressed_on,
)

logger = logging.getLogger(__name__)

# Due members asked per dispatcher transaction (a constant number of queries each).
AUTOPILOT_BATCH_SIZE = 1000
# Batches per dispatcher run, all programmes together: a run stays bounded; the next one
# (seconds later) continues.
AUTOPILOT_MAX_BATCHES = 50
# Contacts per chunk when a segment or an import joins a programme (one transaction, four
# statements), and the chunks and joins one run does at most.
ADD_CHUNK_SIZE = 5000
JOIN_MAX_CHUNKS = 100
JOINS_PER_RUN = 20
JOIN_TASK = "surveys.dispatch_autopilot"


def _channel_clean(channel: object) -> str:
    if channel not in AutopilotChannel.values:
        raise ValidationError({"channel": [_("Use email or sms.")]})
    return str(channel)


def _check_company(company: Company, *objects: Any) -> None:
    for obj in objects:
        if obj.company_id != company.pk:
            raise ValueError(f"{type(obj).__name__} belongs to another company")


# --- The programme ----------------------------------------------------------------------------


def autopilot_configure(
    *,
    company: Company,
    survey: Survey,
    channel: str,
    active: bool,
    cadence_days: int,
    first_delay_days: int,
) -> AutopilotProgram:
    """Create or change the survey's programme on ``channel``.

    A new cadence or first delay applies from each member's next ask on (members already
    scheduled keep their date). Turning it off keeps the members and their dates: turned on
    again, those due are asked at once. ``ValidationError`` per field for bad values.
    """
    _check_company(company, survey)
    channel = _channel_clean(channel)
    errors: dict[str, list[str]] = {}
    if cadence_days not in AUTOPILOT_CADENCES:
        errors["cadence_days"] = [
            _("Use one of %(choices)s days.")
            % {"choices": ", ".join(str(days) for days in AUTOPILOT_CADENCES)}
        ]
    if (
        isinstance(first_delay_days, bool)
        or not isinstance(first_delay_days, int)
        or not 0 <= first_delay_days <= AUTOPILOT_MAX_FIRST_DELAY_DAYS
    ):
        errors["first_delay_days"] = [
            _("A whole number of days from 0 to %(max)d.") % {"max": AUTOPILOT_MAX_FIRST_DELAY_DAYS}
        ]
    if errors:
        raise ValidationError(errors)
    fields = {
        "active": bool(active),
        "cadence_days": cadence_days,
        "first_delay_days": first_delay_days,
    }
    programs = AutopilotProgram.objects.for_company(company)
    existing = programs.filter(survey=survey, channel=channel).first()
    before = snapshot(existing, fields) if existing else {}
    with transaction.atomic():
        try:
            with transaction.atomic():
                program, _created = programs.update_or_create(
                    company=company, survey=survey, channel=channel, defaults=fields
                )
        except IntegrityError:  # the same form saved twice at once: the other one created it
            program = programs.get(survey=survey, channel=channel)
            for name, value in fields.items():
                setattr(program, name, value)
            program.save(update_fields=[*fields, "updated_at"])
        changes = changes_between(before, snapshot(program, fields))
        if changes:
            audit_record(
                company=company,
                action=AuditAction.AUTOPILOT_CONFIGURED,
                target=program,
                changes=changes,
            )
    return program


def _program_for(*, company: Company, survey: Survey, channel: str) -> AutopilotProgram:
    """The configured programme, else a ValidationError (Delighted answers 422 there)."""
    _check_company(company, survey)
    channel = _channel_clean(channel)
    program = (
        AutopilotProgram.objects.for_company(company)
        .filter(survey=survey, channel=channel)
        .select_related("survey")
        .first()
    )
    if program is None:
        raise ValidationError(
            {"channel": [_("Recurring surveys are not set up for this channel yet.")]}
        )
    return program


# --- Members ----------------------------------------------------------------------------------


def autopilot_member_add(
    *,
    company: Company,
    survey: Survey,
    channel: str,
    contact: Contact,
    properties: dict[str, Any] | None = None,
) -> tuple[AutopilotMember, bool]:
    """Put ``contact`` in the survey's programme on ``channel``, or replace the properties
    of its membership (those its next and later asks carry). Returns ``(member, created)``.

    A new member is first asked ``first_delay_days`` after joining. A member that had been
    stopped (its address was suppressed) starts again like a new one. ``ValidationError``:
    no programme on that channel, no address for it, bad properties.
    """
    _check_company(company, contact)
    program = _program_for(company=company, survey=survey, channel=channel)
    if not contact_address(contact, program.channel):
        field = CHANNEL_ADDRESS_FIELD[program.channel]
        raise ValidationError({field: [_("The contact has no address on this channel.")]})
    cleaned = contact_clean(company=company, properties=properties or {})["properties"]
    now = timezone.now()
    first_ask = now + timedelta(days=program.first_delay_days)
    members = AutopilotMember.objects.for_company(company)
    for _attempt in (1, 2):
        try:
            with transaction.atomic():
                member = (
                    members.select_for_update().filter(program=program, contact=contact).first()
                )
                if member is None:
                    member = AutopilotMember.objects.create(
                        company=company,
                        program=program,
                        contact=contact,
                        properties=cleaned,
                        created_at=now,
                        next_ask_at=first_ask,
                    )
                    return member, True
                member.properties = cleaned
                if member.stopped:
                    member.stopped = ""
                    member.next_ask_at = first_ask
                member.save(update_fields=["properties", "stopped", "next_ask_at", "updated_at"])
                return member, False
        except IntegrityError:  # added twice at once: the other one created it; update it
            continue
    raise AssertionError("unreachable: the second attempt finds the member")


def autopilot_member_remove(
    *, company: Company, survey: Survey, channel: str, contact: Contact
) -> bool:
    """Take ``contact`` out of the programme; an ask of it still waiting to be sent is
    cancelled. The contact and its answers stay. Returns whether it was a member."""
    _check_company(company, contact)
    program = _program_for(company=company, survey=survey, channel=channel)
    with transaction.atomic():
        member = (
            AutopilotMember.objects.for_company(company)
            .select_for_update()
            .filter(program=program, contact=contact)
            .first()
        )
        if member is None:
            return False
        if member.last_invitation_id is not None:
            Invitation.objects.for_company(company).filter(
                pk=member.last_invitation_id, status=InvitationStatus.SCHEDULED
            ).update(status=InvitationStatus.CANCELLED, updated_at=timezone.now())
        member.delete()
    return True


def autopilot_members_add_audience(
    *,
    company: Company,
    program: AutopilotProgram,
    audience: dict[str, Any],
    created_by: User | None = None,
) -> AutopilotJoin:
    """The contacts of an audience (``{"all": true}`` or property filters, as a campaign's)
    join ``program``: a join a worker does after the commit, chunk by chunk
    (``autopilot_joins_run``); members already in keep their schedule and properties.
    ``ValidationError`` (``audience``) for a malformed audience."""
    from surveys.services.campaigns import audience_clean

    _check_company(company, program)
    join = AutopilotJoin.objects.create(
        company=company, program=program, audience=audience_clean(audience), created_by=created_by
    )
    wake(JOIN_TASK)
    return join


def autopilot_import_join(
    *,
    company: Company,
    program: AutopilotProgram,
    contact_import: ContactImport,
    created_by: User | None = None,
) -> AutopilotJoin:
    """Once ``contact_import`` has finished, the contacts it created or updated join
    ``program`` (the contacts it stamped between its start and its end; a contact edited
    elsewhere in that window joins too). Done by ``autopilot_joins_run``."""
    _check_company(company, program, contact_import)
    return AutopilotJoin.objects.create(
        company=company, program=program, contact_import=contact_import, created_by=created_by
    )


def autopilot_joins_run(*, max_chunks: int = JOIN_MAX_CHUNKS) -> int:
    """Do the pending joins (a system job across companies), oldest first, at most
    ``max_chunks`` chunks of ``ADD_CHUNK_SIZE`` contacts per run (the next run continues).
    A join of an import waits until the import has finished. Returns the members added."""
    pending = AutopilotJoin.objects.unscoped(reason="the joins of every company")
    ready = Q(contact_import__isnull=True) | Q(
        contact_import__status__in=(ImportStatus.DONE, ImportStatus.FAILED)
    )
    added = 0
    chunks = 0
    for pk in (
        pending.filter(ready, done_at__isnull=True)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:JOINS_PER_RUN]
    ):
        while chunks < max_chunks:
            chunks += 1
            chunk_added, finished = _join_chunk(pk)
            added += chunk_added
            if finished:
                break
    return added


def _join_chunk(pk: int) -> tuple[int, bool]:
    """The next chunk of one join, in one transaction with the join row locked (a second
    worker skips it): returns (members added, whether the join is finished)."""
    joins = AutopilotJoin.objects.unscoped(reason="one join, locked by id")
    with transaction.atomic():
        join = (
            joins.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=pk, done_at__isnull=True)
            .select_related("company", "program", "contact_import")
            .first()
        )
        if join is None:  # done, or another worker has it
            return 0, True
        company, program = join.company, join.program
        contacts = _join_contacts(join)
        field = CHANNEL_ADDRESS_FIELD[program.channel]
        chunk = (
            []
            if contacts is None
            else list(
                contacts.filter(pk__gt=join.after)
                .order_by("pk")
                .values_list("pk", field)[:ADD_CHUNK_SIZE]
            )
        )
        reachable = [pk for pk, address in chunk if address]
        existing = set(
            AutopilotMember.objects.for_company(company)
            .filter(program=program, contact_id__in=reachable)
            .values_list("contact_id", flat=True)
        )
        now = timezone.now()
        first_ask = now + timedelta(days=program.first_delay_days)
        new = [
            AutopilotMember(
                company=company,
                program=program,
                contact_id=pk,
                created_at=now,
                next_ask_at=first_ask,
            )
            for pk in reachable
            if pk not in existing
        ]
        # A member added meanwhile (the API, another join) is kept as it is.
        AutopilotMember.objects.bulk_create(new, ignore_conflicts=True)
        finished = len(chunk) < ADD_CHUNK_SIZE
        joins.filter(pk=pk).update(
            after=chunk[-1][0] if chunk else join.after,
            added=F("added") + len(new),
            already=F("already") + len(existing),
            no_address=F("no_address") + len(chunk) - len(reachable),
            done_at=now if finished else None,
        )
    return len(new), finished


def _join_contacts(join: AutopilotJoin) -> QuerySet[Contact] | None:
    """The contacts a join adds (None: nothing, e.g. an import that never started)."""
    from surveys.selectors import contacts_matching

    if join.audience is not None:
        return contacts_matching(company=join.company, audience=join.audience)
    contact_import = join.contact_import
    if contact_import is None or contact_import.started_at is None:
        return None
    if contact_import.finished_at is None:
        return None
    return Contact.objects.for_company(join.company).filter(
        updated_at__gte=contact_import.started_at, updated_at__lte=contact_import.finished_at
    )


def autopilot_members_stop_for_address(*, company: Company, channel: str, address: str) -> int:
    """An address was suppressed (unsubscribed, bounced, complained, STOP): the members
    reached there on that channel are no longer asked. Returns how many stopped."""
    if channel not in AutopilotChannel.values:
        return 0
    # Both sides are stored normalised (lower-case email, E.164): an exact match uses the
    # contact indexes. A contact stored otherwise is still stopped when its ask comes due.
    field = CHANNEL_ADDRESS_FIELD[channel]
    contacts = Contact.objects.for_company(company).filter(**{field: address})
    return (
        AutopilotMember.objects.for_company(company)
        .filter(
            program__in=AutopilotProgram.objects.for_company(company).filter(channel=channel),
            contact__in=contacts,
            next_ask_at__isnull=False,
        )
        .update(next_ask_at=None, stopped=AutopilotStop.SUPPRESSED, updated_at=timezone.now())
    )


# --- The dispatcher ---------------------------------------------------------------------------


@dataclass
class AutopilotOutcome:
    """What one ``autopilot_dispatch_due`` run did, by member."""

    asked: int = 0
    throttled: int = 0
    no_address: int = 0
    stopped: int = 0


def autopilot_dispatch_due(
    *, now: datetime | None = None, batch_size: int = AUTOPILOT_BATCH_SIZE
) -> AutopilotOutcome:
    """Ask the members whose time has come (a system job across companies).

    The programmes that are on, of active surveys, with a member due (one query), then
    per programme batches of due members in time order (``_dispatch_batch``).
    """
    now = now or timezone.now()
    outcome = AutopilotOutcome()
    due = AutopilotMember.objects.unscoped(reason="a subquery of the dispatcher").filter(
        program=OuterRef("pk"), next_ask_at__lte=now
    )
    programs = list(
        AutopilotProgram.objects.unscoped(reason="the dispatcher serves every company")
        .filter(active=True, survey__status=SurveyStatus.ACTIVE)
        .filter(Exists(due))
        .select_related("company", "survey")
        .order_by("pk")
    )
    batches = 0
    for program in programs:
        while batches < AUTOPILOT_MAX_BATCHES:
            batches += 1
            if _dispatch_batch(program=program, now=now, batch_size=batch_size, outcome=outcome) < (
                batch_size
            ):
                break
    if any((outcome.asked, outcome.throttled, outcome.no_address, outcome.stopped)):
        logger.info("recurring surveys dispatched: %s", outcome)
    return outcome


def _dispatch_batch(
    *, program: AutopilotProgram, now: datetime, batch_size: int, outcome: AutopilotOutcome
) -> int:
    """Claim up to ``batch_size`` due members of ``program`` and ask them, in one
    transaction with a constant number of queries; returns how many were claimed.

    Per member, the first rule that applies: suppressed address → stopped; no address on
    the channel → next ask moved on; surveyed within the throttle window → moved on; else
    a queued invitation with the member's properties, next ask at now + cadence.
    """
    company, channel = program.company, program.channel
    with transaction.atomic():
        members = list(
            AutopilotMember.objects.for_company(company)
            .select_for_update(skip_locked=True, of=("self",))
            .filter(program=program, next_ask_at__lte=now)
            .select_related("contact")
            .order_by("next_ask_at", "pk")[:batch_size]
        )
        if not members:
            return 0
        addresses = {m.pk: contact_address(m.contact, channel) for m in members}
        suppressed = suppressed_on(
            company=company, channel=channel, addresses=[a for a in addresses.values() if a]
        )
        stopped = [m for m in members if addresses[m.pk] and addresses[m.pk] in suppressed]
        unreachable = [m for m in members if not addresses[m.pk]]
        reachable = [m for m in members if addresses[m.pk] and addresses[m.pk] not in suppressed]
        throttled_ids = _throttled(program=program, members=reachable, now=now)
        throttled = [m for m in reachable if m.contact_id in throttled_ids]
        to_ask = [m for m in reachable if m.contact_id not in throttled_ids]
        invitations = _invitations_create(program=program, members=to_ask, now=now)
        next_ask = now + timedelta(days=program.cadence_days)
        rows = AutopilotMember.objects.for_company(company)
        _link_asked(
            company=company,
            asked=list(zip(to_ask, invitations, strict=True)),
            next_ask=next_ask,
            now=now,
        )
        moved_on = [m.pk for m in (*throttled, *unreachable)]
        if moved_on:
            rows.filter(pk__in=moved_on).update(next_ask_at=next_ask, updated_at=now)
        if stopped:
            rows.filter(pk__in=[m.pk for m in stopped]).update(
                next_ask_at=None, stopped=AutopilotStop.SUPPRESSED, updated_at=now
            )
        sends_wake((i.pk, company.pk, i.channel) for i in invitations)
    outcome.asked += len(to_ask)
    outcome.throttled += len(throttled)
    outcome.no_address += len(unreachable)
    outcome.stopped += len(stopped)
    return len(members)


def _throttled(
    *, program: AutopilotProgram, members: Sequence[AutopilotMember], now: datetime
) -> set[int]:
    """Contacts of ``members`` surveyed (or about to be) by a survey of the same kind,
    on any channel, within the throttle window: the survey's, at most the cadence (the
    programme's own cadence is what the company chose for it), or who answered one without an
    invitation then (a web link, the website widget). A member's own previous ask does not
    count (it is about one cadence old). Two queries."""
    survey = program.survey
    days = min(survey.throttle_days, program.cadence_days)
    if not days or not members:
        return set()
    since = now - timedelta(days=days)
    own = [m.last_invitation_id for m in members if m.last_invitation_id is not None]
    contact_ids = [m.contact_id for m in members]
    invited = set(
        Invitation.objects.for_company(program.company)
        .filter(
            contact_id__in=contact_ids,
            survey__kind=survey.kind,
            status__in=THROTTLE_STATUSES,
        )
        .filter(Q(sent_at__gte=since) | Q(sent_at__isnull=True, scheduled_for__gte=since))
        .exclude(pk__in=own)
        .values_list("contact_id", flat=True)
    )
    return invited | answered_uninvited_contact_ids(
        company=program.company, kind=survey.kind, contact_ids=contact_ids, since=since, until=now
    )


def _invitations_create(
    *, program: AutopilotProgram, members: Sequence[AutopilotMember], now: datetime
) -> list[Invitation]:
    """One queued invitation per member (fresh tokens, the member's properties) and its
    timeline event: two statements for the batch."""
    if not members:
        return []
    company = program.company
    invitations = []
    for member in members:
        invitation = invitation_new(
            company=company,
            survey=program.survey,
            contact=member.contact,
            scheduled_for=now,
            properties=member.properties,
            channel=program.channel,
        )
        # Straight to the send path: the dispatcher's own scan is for scheduled rows.
        invitation.status = InvitationStatus.QUEUED
        invitations.append(invitation)
    created = Invitation.objects.bulk_create(invitations)
    detail = f"recurring survey ({program.channel}, every {program.cadence_days} days)"
    events_add(company, [(i.pk, "scheduled", detail) for i in created])
    return created


def _link_asked(
    *,
    company: Company,
    asked: Sequence[tuple[AutopilotMember, Invitation]],
    next_ask: datetime,
    now: datetime,
) -> None:
    """Each asked member: its invitation, the next ask. One statement per 1,000 (PostgreSQL)."""
    if not asked:
        return
    also = {"next_ask_at": next_ask, "last_asked_at": now, "updated_at": now}
    if connection.vendor != "postgresql":
        rows = AutopilotMember.objects.for_company(company)
        for member, invitation in asked:
            rows.filter(pk=member.pk).update(last_invitation=invitation, **also)
        return
    tenant_update_per_row(
        AutopilotMember,
        company=company,
        field_name="last_invitation",
        values=[(member.pk, invitation.pk) for member, invitation in asked],
        also=also,
    )
