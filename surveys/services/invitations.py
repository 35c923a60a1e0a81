"""Invitations: a new one, its timeline, the throttle window, channels and addresses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company, new_public_id
from companies.wake import wake
from notifications.models import Channel
from surveys.models import (
    Campaign,
    CampaignChannel,
    Contact,
    Invitation,
    InvitationEvent,
    InvitationStatus,
    Survey,
)
from surveys.tokens import new_nonce, short_token_for, token_for, token_hash

# Invitations that count for the throttle window (anything not refused or dropped).
THROTTLE_STATUSES = (
    InvitationStatus.SCHEDULED,
    InvitationStatus.QUEUED,
    InvitationStatus.SENDING,
    InvitationStatus.SENT,
)


def invitation_new(
    *,
    company: Company,
    survey: Survey,
    contact: Contact,
    scheduled_for: datetime,
    campaign: Campaign | None = None,
    language: str | None = None,
    properties: dict[str, Any] | None = None,
    channel: str = Channel.EMAIL,
) -> Invitation:
    """An unsaved scheduled invitation with a fresh answer-link token."""
    nonce = new_nonce()
    return Invitation(
        company=company,
        survey=survey,
        contact=contact,
        campaign=campaign,
        channel=channel,
        language=language or contact.language or survey.default_language,
        token_nonce=nonce,
        token_hash=token_hash(token_for(nonce)),
        short_token_hash=(token_hash(short_token_for(nonce)) if channel in SMS_CHANNELS else None),
        status=InvitationStatus.SCHEDULED,
        scheduled_for=scheduled_for,
        properties=properties or {},
        # Counted again from the actual send (invitations_send); this bounds a link that is
        # never sent.
        expires_at=scheduled_for + timedelta(days=survey.link_valid_days),
    )


@dataclass(frozen=True)
class Target:
    """One contact a campaign invites, on its channel, in its language."""

    contact: Contact
    channel: str
    language: str


def invitations_schedule(
    *,
    company: Company,
    survey: Survey,
    campaign: Campaign,
    scheduled_for: datetime,
    targets: Sequence[Target],
) -> int:
    """Insert one scheduled invitation per target (fresh tokens) and its "scheduled" event;
    how many were inserted.

    On PostgreSQL both go in ONE statement fed by arrays (``INSERT … SELECT … FROM unnest``
    into a CTE whose ids feed the events' INSERT): building 1,000 model instances and
    ``bulk_create``'s per-value preparation were most of a campaign's expansion. Elsewhere
    ``bulk_create`` of ``invitation_new`` rows.
    """
    if not targets:
        return 0
    if connection.vendor != "postgresql":
        created = Invitation.objects.bulk_create(
            invitation_new(
                company=company,
                survey=survey,
                contact=target.contact,
                scheduled_for=scheduled_for,
                campaign=campaign,
                language=target.language,
                channel=target.channel,
            )
            for target in targets
        )
        events_add(company, [(invitation.pk, "scheduled", "") for invitation in created])
        return len(created)
    nonces = [new_nonce() for _target in targets]
    now = timezone.now()
    columns: dict[str, list[Any]] = {
        "public_id": [new_public_id() for _target in targets],
        "contact_id": [target.contact.pk for target in targets],
        "channel": [target.channel for target in targets],
        "language": [target.language for target in targets],
        "token_nonce": nonces,
        "token_hash": [token_hash(token_for(nonce)) for nonce in nonces],
        "short_token_hash": [
            token_hash(short_token_for(nonce)) if target.channel in SMS_CHANNELS else None
            for nonce, target in zip(nonces, targets, strict=True)
        ],
    }
    fixed: dict[str, Any] = {
        "company_id": company.pk,
        "survey_id": survey.pk,
        "campaign_id": campaign.pk,
        "status": InvitationStatus.SCHEDULED.value,
        "scheduled_for": scheduled_for,
        "properties": "{}",
        "attempts": 0,
        "failed_reason": "",
        # Counted again from the actual send; this bounds a link that is never sent.
        "expires_at": scheduled_for + timedelta(days=survey.link_valid_days),
        "created_at": now,
        "updated_at": now,
    }
    quote = connection.ops.quote_name
    names = [*columns, *fixed]
    casts = {"contact_id": "bigint[]"}
    unnest = ", ".join(f"%s::{casts.get(name, 'text[]')}" for name in columns)
    values = ", ".join([*(f"r.{name}" for name in columns), *(["%s"] * len(fixed))])
    # Only quoted model metadata is formatted in: every value is a parameter.
    sql = (
        f"WITH created AS (INSERT INTO {quote(Invitation._meta.db_table)}"  # noqa: S608
        f" ({', '.join(quote(name) for name in names)})"
        f" SELECT {values} FROM unnest({unnest}) AS r({', '.join(columns)}) RETURNING id)"
        f" INSERT INTO {quote(InvitationEvent._meta.db_table)}"
        " (company_id, invitation_id, event, detail, occurred_at)"
        " SELECT %s, id, 'scheduled', '', %s FROM created"
    )
    params = [*fixed.values(), *columns.values(), company.pk, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def throttled_contact_ids(
    *, company: Company, survey: Survey, contact_ids: Iterable[int], at: datetime
) -> set[int]:
    """Contacts (of ``contact_ids``) already surveyed by a survey of the same kind within the
    survey's throttle window before ``at``: sent then, or waiting to be sent, or who answered
    without an invitation then (a signed web link, the website widget). TWO queries."""
    found = throttle_querysets(company=company, survey=survey, at=at)
    if found is None:
        return set()
    invited, answered = found
    ids = list(contact_ids)
    return set(invited.filter(contact_id__in=ids).values_list("contact_id", flat=True)) | set(
        answered.filter(pk__in=ids).values_list("pk", flat=True)
    )


def throttle_querysets(
    *, company: Company, survey: Survey, at: datetime
) -> tuple[models.QuerySet[Invitation], models.QuerySet[Contact]] | None:
    """What ``throttled_contact_ids`` asks, for any contact: the invitations that throttle
    their contact (``contact_id``), and the contacts who answered without an invitation
    within the window. None when the survey has no throttle. (The widget asks them as
    subqueries of its contact lookup: one query.)"""
    if not survey.throttle_days:
        return None
    since = at - timedelta(days=survey.throttle_days)
    invited = (
        Invitation.objects.for_company(company)
        .filter(survey__kind=survey.kind, status__in=THROTTLE_STATUSES)
        .filter(Q(sent_at__gte=since) | Q(sent_at__isnull=True, scheduled_for__gte=since))
    )
    answered = answered_uninvited_contacts(company=company, kind=survey.kind, since=since, until=at)
    return invited, answered


def answered_uninvited_contacts(
    *, company: Company, kind: str, since: datetime, until: datetime
) -> models.QuerySet[Contact]:
    """The contacts who answered a survey of ``kind`` between ``since`` and ``until`` without
    an invitation (a signed web link, the website widget).

    Answers are the responses app's (above this one): reached through the contact's reverse
    relation, without importing it. Answers to invitations count through the invitations.
    """
    return Contact.objects.for_company(company).filter(
        responses__company=company,
        responses__survey__kind=kind,
        responses__invitation__isnull=True,
        responses__created_at__gte=since,
        responses__created_at__lte=until,
    )


def answered_uninvited_contact_ids(
    *, company: Company, kind: str, contact_ids: Iterable[int], since: datetime, until: datetime
) -> set[int]:
    """Those of ``contact_ids`` in ``answered_uninvited_contacts``. ONE query."""
    answered = answered_uninvited_contacts(company=company, kind=kind, since=since, until=until)
    return set(answered.filter(pk__in=list(contact_ids)).values_list("pk", flat=True))


# Channels and the Contact field each one sends to.
CHANNEL_ADDRESS_FIELD: dict[str, str] = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.WHATSAPP: "phone",
}

SMS_CHANNELS: frozenset[str] = frozenset({Channel.SMS, Channel.WHATSAPP})

# A contact property naming the channel a contact prefers (campaigns on "preferred").
PREFERRED_CHANNEL_PROPERTY = "preferred_channel"


def channel_clean(channel: object, *, preferred: bool = False) -> str:
    """A known channel ("preferred" too, for campaigns), else a ValidationError."""
    if channel in CHANNEL_ADDRESS_FIELD or (preferred and channel == CampaignChannel.PREFERRED):
        return str(channel)
    raise ValidationError({"channel": [_("Use email, sms, whatsapp or preferred.")]})


def contact_channel(contact: Contact) -> str:
    """The channel a "preferred" campaign uses for ``contact``: its ``preferred_channel``
    property when it has that address, else email when it has one, else SMS."""
    wanted = (contact.properties or {}).get(PREFERRED_CHANNEL_PROPERTY)
    if isinstance(wanted, str):
        wanted = wanted.strip().lower()
        if wanted in CHANNEL_ADDRESS_FIELD and getattr(contact, CHANNEL_ADDRESS_FIELD[wanted]):
            return wanted
    return Channel.EMAIL if contact.email else Channel.SMS


def contact_address(contact: Contact, channel: str) -> str | None:
    """The contact's normalised address on ``channel`` (None: the contact has none)."""
    from notifications.services import normalize_address

    value = getattr(contact, CHANNEL_ADDRESS_FIELD[channel])
    return normalize_address(channel, value) if value else None


def suppressed_on(*, company: Company, channel: str, addresses: Iterable[str]) -> set[str]:
    from notifications.selectors import suppressed_addresses

    return set(suppressed_addresses(company=company, channel=channel, addresses=list(addresses)))


def events_add(company: Company, events: Sequence[tuple[int, str, str]]) -> None:
    """Add timeline events ``(invitation id, event, detail)``, all occurring now.

    On PostgreSQL one ``INSERT … SELECT … FROM unnest(ids)`` per distinct (event, detail),
    usually one: ``bulk_create`` spends ~0.1 ms of Python per row, which was a third of a
    campaign's expansion. Elsewhere ``bulk_create``.
    """
    if not events:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        InvitationEvent.objects.bulk_create(
            InvitationEvent(
                company=company, invitation_id=pk, event=event, detail=detail, occurred_at=now
            )
            for pk, event, detail in events
        )
        return
    groups: dict[tuple[str, str], list[int]] = {}
    for pk, event, detail in events:
        groups.setdefault((event, detail), []).append(pk)
    meta = InvitationEvent._meta
    quote = connection.ops.quote_name
    fields = [
        meta.get_field(n) for n in ("company", "invitation", "event", "detail", "occurred_at")
    ]
    columns = ", ".join(quote(f.column) for f in fields if isinstance(f, models.Field))
    assert columns.count(",") == len(fields) - 1
    # Only quoted model metadata is formatted in: every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
        " SELECT %s, id, %s, %s, %s FROM unnest(%s::bigint[]) AS id"
    )
    with connection.cursor() as cursor:
        for (event, detail), ids in groups.items():
            cursor.execute(sql, [company.pk, event, detail, now, ids])


def invitation_mark_answered(*, invitation: Invitation) -> bool:
    """Record that the invitation was answered (once; later answers change nothing here).

    On every answer's hot path: on PostgreSQL the stamp and its timeline event are one
    statement (an UPDATE … RETURNING feeding the INSERT), elsewhere two.
    """
    if invitation.answered_at is not None:
        return False
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _mark_answered_postgres(invitation, now)
    updated = (
        Invitation.objects.filter(company_id=invitation.company_id)
        .filter(pk=invitation.pk, answered_at__isnull=True)
        .update(answered_at=now)
    )
    if updated:
        invitation.answered_at = now
        InvitationEvent.objects.create(
            company_id=invitation.company_id, invitation=invitation, event="answered"
        )
    return bool(updated)


def _mark_answered_postgres(invitation: Invitation, now: datetime) -> bool:
    quote = connection.ops.quote_name
    table, events = Invitation._meta.db_table, InvitationEvent._meta.db_table
    # Only quoted model metadata is formatted in: every value is a parameter.
    sql = (
        f"WITH marked AS (UPDATE {quote(table)} SET answered_at = %s"  # noqa: S608
        " WHERE company_id = %s AND id = %s AND answered_at IS NULL RETURNING id, company_id)"
        f" INSERT INTO {quote(events)} (company_id, invitation_id, event, detail, occurred_at)"
        " SELECT company_id, id, 'answered', '', %s FROM marked"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, invitation.company_id, invitation.pk, now])
        marked = cursor.rowcount == 1
    if marked:
        invitation.answered_at = now
    return marked


def invitation_event_add(
    *, company: Company, invitation: Invitation, event: str, detail: str = ""
) -> InvitationEvent:
    """Put one event on the invitation's timeline (e.g. the SMS conversation's steps)."""
    if invitation.company_id != company.pk:
        raise ValueError("invitation belongs to another company")
    return InvitationEvent.objects.create(
        company=company, invitation=invitation, event=event[:32], detail=detail[:500]
    )


def invitation_record_status(
    *, company_id: int, invitation_public_id: str, status: str, occurred_at: datetime
) -> bool:
    """A provider's news about an invitation's message (delivered, opened, clicked, bounced…)
    goes on the invitation's timeline; the first delivered/opened/clicked time is kept."""
    invitation = (
        Invitation.objects.filter(company_id=company_id)
        .filter(public_id=invitation_public_id)
        .first()
    )
    if invitation is None:
        return False
    stamp_field = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}
    field = stamp_field.get(status)
    if field is not None:
        Invitation.objects.filter(company_id=company_id).filter(
            pk=invitation.pk, **{f"{field}__isnull": True}
        ).update(**{field: occurred_at})
    InvitationEvent.objects.create(
        company_id=company_id, invitation=invitation, event=status[:32], occurred_at=occurred_at
    )
    return True


# Invitations per send task. The post office splits further to the provider's per-call cap;
# 500 is the largest cap among the supported providers (Postmark), so one task is at most one
# provider call for most of them.
SEND_BATCH_SIZE = 500
# SMS/WhatsApp invitations per send task: one message per provider call at the sender's rate
# (1/s for a long code), so a task stays well inside the time limit and the claim's lease.
SMS_SEND_BATCH_SIZE = 20
SEND_TASK = "surveys.send_invitations"


def sends_wake(rows: Iterable[tuple[int, int, str]], *, reminder: bool = False) -> None:
    """After the commit, wake send tasks for ``(invitation id, company id, channel)`` rows
    (``queued``, or sent for a reminder): one task per company, kind of channel and batch.
    A lost message is fine: the stale sweep wakes queued rows again."""
    by_company: dict[tuple[int, bool], list[int]] = {}
    for pk, company_id, channel in rows:
        by_company.setdefault((company_id, channel in SMS_CHANNELS), []).append(pk)
    for (company_id, texts), ids in by_company.items():
        size = SMS_SEND_BATCH_SIZE if texts else SEND_BATCH_SIZE
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            if reminder:
                wake(SEND_TASK, company_id, chunk, reminder=True)
            else:
                wake(SEND_TASK, company_id, chunk)


def invitations_cancel_pending(
    *, company: Company, contact: Contact, survey: Survey | None = None
) -> int:
    """Cancel the contact's invitations still waiting for their time (of ``survey`` only, when
    given); those already handed to a send task go out. Returns how many were cancelled."""
    pending = Invitation.objects.for_company(company).filter(
        contact=contact, status=InvitationStatus.SCHEDULED
    )
    if survey is not None:
        pending = pending.filter(survey=survey)
    with transaction.atomic():
        # Locked: the dispatcher claims due rows with SKIP LOCKED, so a row is either handed
        # over before this or cancelled here, never both.
        ids = list(pending.select_for_update().values_list("pk", flat=True))
        Invitation.objects.for_company(company).filter(pk__in=ids).update(
            status=InvitationStatus.CANCELLED
        )
        events_add(company, [(pk, "cancelled", "") for pk in ids])
    return len(ids)
