"""Writes on follow-ups: opening one for an alert, assigning, status changes, notes, and the
overdue sweep with its escalation email. Every change leaves an event in the thread."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.models import Company, Membership, Role, User, role_at_least
from notifications.email import email_send
from notifications.models import DeliveryStatus
from notifications.transport import TransientSendError
from responses.followups_emails import Recipient, render_emails
from responses.models import (
    OPEN_STATUSES,
    AlertRule,
    Followup,
    FollowupEvent,
    FollowupEventKind,
    FollowupStatus,
    InboxSettings,
    ResolutionReason,
    Response,
)
from responses.webhook_events import followup_event_emit

logger = logging.getLogger(__name__)

NOTE_MAX_CHARS = 5000
BULK_MAX = 200


# --- Settings ------------------------------------------------------------------------------------


def inbox_settings_of(*, company: Company) -> InboxSettings:
    """The company's settings; an unsaved row with the defaults if it never changed them."""
    row = InboxSettings.objects.for_company(company).first()
    return row if row is not None else InboxSettings(company=company)


def sla_hours_of(*, company: Company) -> int:
    return inbox_settings_of(company=company).sla_hours or settings.FOLLOWUP_SLA_HOURS


def inbox_settings_update(
    *, company: Company, sla_hours: int | None, round_robin: bool
) -> InboxSettings:
    """``sla_hours`` None: the default (``FOLLOWUP_SLA_HOURS``)."""
    if sla_hours is not None and not 1 <= sla_hours <= 24 * 30:
        raise ValidationError({"sla_hours": _("Choose between 1 hour and 30 days.")})
    values = {"sla_hours": sla_hours, "round_robin": round_robin}
    with transaction.atomic():
        before = snapshot(inbox_settings_of(company=company), values)
        row, _created = InboxSettings.objects.for_company(company).update_or_create(
            company=company, defaults=values
        )
        changes = changes_between(before, snapshot(row, values))
        if changes:
            audit_record(
                company=company,
                action=AuditAction.SETTINGS_UPDATED,
                target_type="inboxsettings",
                changes=changes,
            )
    return row


def _next_round_robin(company: Company) -> Membership | None:
    """The agent after the one that got the last follow-up (membership order), wrapping.

    The settings row is locked, so two follow-ups opened at once go to different agents.
    """
    agents = list(Membership.objects.for_company(company).filter(role=Role.AGENT).order_by("id"))
    if not agents:
        return None
    row, _created = (
        InboxSettings.objects.for_company(company)
        .select_for_update()
        .get_or_create(company=company)
    )
    if not row.round_robin:
        return None
    after = row.last_assigned_id or 0
    chosen = next((m for m in agents if m.pk > after), agents[0])
    row.last_assigned = chosen
    row.save(update_fields=["last_assigned"])
    return chosen


# --- Opening (alerts) ----------------------------------------------------------------------------


def _event(
    followup: Followup,
    kind: str,
    *,
    actor: User | None = None,
    body: str = "",
    data: dict[str, object] | None = None,
) -> FollowupEvent:
    return FollowupEvent.objects.create(
        company_id=followup.company_id,
        followup=followup,
        kind=kind,
        actor=actor,
        body=body,
        data=data or {},
    )


def followup_record_event(
    *,
    company: Company,
    followup: Followup,
    kind: str,
    actor: User | None,
    body: str = "",
    data: dict[str, object] | None = None,
) -> FollowupEvent:
    """An entry in the thread written by another part of the inbox (replies)."""
    assert followup.company_id == company.pk
    return _event(followup, kind, actor=actor, body=body, data=data)


def followup_open_for_alert(
    *, company: Company, response: Response, rules: Sequence[AlertRule]
) -> Followup | None:
    """Open the response's follow-up for ``rules`` that just fired (if any), or record in an
    existing follow-up's thread how the answer changed since it last looked.

    Runs inside the alert transaction. One follow-up per response (unique constraint): a
    racing worker that loses the insert takes the winner's row.
    """
    followup = (
        Followup.objects.for_company(company).select_for_update().filter(response=response).first()
    )
    created = False
    if followup is None and rules:
        now = timezone.now()
        sla = sla_hours_of(company=company)
        candidate = Followup(
            company=company,
            response=response,
            survey_id=response.survey_id,
            score=response.score,
            seen_comment=response.comment,
            due_at=now + timedelta(hours=sla),
            created_at=now,
            updated_at=now,
        )
        try:
            with transaction.atomic():
                candidate.save(force_insert=True)
        except IntegrityError:
            candidate = None  # type: ignore[assignment]
        if candidate is not None:
            followup, created = candidate, True
            _event(followup, FollowupEventKind.CREATED, data={"sla_hours": sla})
            assignee = _next_round_robin(company)
            if assignee is not None:
                followup.assignee = assignee
                followup.save(update_fields=["assignee"])
                _event(
                    followup,
                    FollowupEventKind.ASSIGNED,
                    data={"to": assignee.user.email, "round_robin": True},
                )
        else:
            followup = (
                Followup.objects.for_company(company)
                .select_for_update()
                .filter(response=response)
                .first()
            )
    if followup is None:
        return None
    if created:
        followup_event_emit(company=company, followup=followup, created=True)
    else:
        _record_answer_change(followup, response)
    for rule in rules:
        _event(followup, FollowupEventKind.ALERT, body=rule.name, data={"rule": rule.public_id})
    return followup


def _record_answer_change(followup: Followup, response: Response) -> None:
    """A later edit of the answer: an event in the thread, not a new alert."""
    changes: dict[str, object] = {}
    if response.score != followup.score:
        changes["score"] = [followup.score, response.score]
    if response.comment != followup.seen_comment:
        changes["comment"] = response.comment
    if not changes:
        return
    followup.score = response.score
    followup.seen_comment = response.comment
    followup.updated_at = timezone.now()
    followup.save(update_fields=["score", "seen_comment", "updated_at"])
    _event(
        followup,
        FollowupEventKind.ANSWER_CHANGED,
        body=response.comment if "comment" in changes else "",
        data=changes,
    )


# --- Working a follow-up -------------------------------------------------------------------------


def _locked(company: Company, followup: Followup) -> Followup:
    return Followup.objects.for_company(company).select_for_update().get(pk=followup.pk)


def _check_assignable(company: Company, assignee: Membership | None) -> None:
    if assignee is None:
        return
    if assignee.company_id != company.pk or not role_at_least(assignee.role, Role.AGENT):
        raise ValidationError({"assignee": _("Choose a teammate who works the inbox.")})


def followup_assign(
    *, company: Company, followup: Followup, assignee: Membership | None, actor: User
) -> Followup:
    """Give the follow-up to a teammate (agent or above), or nobody (None)."""
    _check_assignable(company, assignee)
    with transaction.atomic():
        row = _locked(company, followup)
        if row.assignee_id == (assignee.pk if assignee else None):
            return row
        row.assignee = assignee
        row.updated_at = timezone.now()
        row.save(update_fields=["assignee", "updated_at"])
        _event(
            row,
            FollowupEventKind.ASSIGNED,
            actor=actor,
            data={"to": assignee.user.email if assignee else None},
        )
        followup_event_emit(company=company, followup=row, created=False)
    return row


def followup_set_status(
    *,
    company: Company,
    followup: Followup,
    status: str,
    actor: User | None,
    resolution: str = "",
) -> Followup:
    """Move a follow-up: between open statuses, to resolved (a reason is required), or
    reopened from resolved (a fresh SLA starts: someone must answer again)."""
    if status not in FollowupStatus.values:
        raise ValidationError({"status": _("Unknown status.")})
    if status == FollowupStatus.RESOLVED and resolution not in ResolutionReason.values:
        raise ValidationError({"resolution": _("Choose why it is resolved.")})
    with transaction.atomic():
        row = _locked(company, followup)
        if row.status == status and status != FollowupStatus.RESOLVED:
            return row
        now = timezone.now()
        data: dict[str, object] = {"from": row.status, "to": status}
        fields = ["status", "resolution", "resolved_at", "updated_at"]
        if status == FollowupStatus.RESOLVED:
            row.resolution, row.resolved_at = resolution, now
            data["resolution"] = resolution
        else:
            if row.status == FollowupStatus.RESOLVED:
                data["reopened"] = True
                sla = sla_hours_of(company=company)
                row.due_at = now + timedelta(hours=sla)
                row.overdue_at = row.escalated_at = None
                fields += ["due_at", "overdue_at", "escalated_at"]
            row.resolution, row.resolved_at = "", None
        row.status, row.updated_at = status, now
        row.save(update_fields=fields)
        _event(row, FollowupEventKind.STATUS, actor=actor, data=data)
        followup_event_emit(company=company, followup=row, created=False)
    return row


def followup_add_note(*, company: Company, followup: Followup, body: str, actor: User) -> None:
    """An internal note (never shown to the customer)."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a note first.")})
    if len(body) > NOTE_MAX_CHARS:
        raise ValidationError(
            {"body": _("Please keep it under %(n)d characters.") % {"n": NOTE_MAX_CHARS}}
        )
    with transaction.atomic():
        row = _locked(company, followup)
        row.updated_at = timezone.now()
        row.save(update_fields=["updated_at"])
        _event(row, FollowupEventKind.NOTE, actor=actor, body=body)


def followups_bulk_assign(
    *, company: Company, public_ids: Sequence[str], assignee: Membership | None, actor: User
) -> int:
    _check_assignable(company, assignee)
    rows = list(
        Followup.objects.for_company(company)
        .filter(public_id__in=list(public_ids)[:BULK_MAX])
        .order_by("pk")
    )
    for row in rows:
        followup_assign(company=company, followup=row, assignee=assignee, actor=actor)
    return len(rows)


def followups_bulk_resolve(
    *, company: Company, public_ids: Sequence[str], resolution: str, actor: User
) -> int:
    if resolution not in ResolutionReason.values:
        raise ValidationError({"resolution": _("Choose why it is resolved.")})
    rows = list(
        Followup.objects.for_company(company)
        .filter(public_id__in=list(public_ids)[:BULK_MAX], status__in=OPEN_STATUSES)
        .order_by("pk")
    )
    for row in rows:
        followup_set_status(
            company=company,
            followup=row,
            status=FollowupStatus.RESOLVED,
            resolution=resolution,
            actor=actor,
        )
    return len(rows)


# --- Overdue and escalation ------------------------------------------------------------------


def followups_escalate_overdue(*, limit: int = 500) -> int:
    """The periodic sweep: mark open follow-ups past due and email the company's admins,
    once per follow-up (``escalated_at`` is claimed by a conditional UPDATE before the
    email, so overlapping sweeps never email twice). Returns how many were escalated."""
    now = timezone.now()
    due = list(
        Followup.objects.unscoped(reason="the overdue sweep runs across companies")
        .filter(status__in=OPEN_STATUSES, due_at__lt=now, escalated_at__isnull=True)
        .select_related("company", "survey", "response", "assignee__user")
        .order_by("due_at", "pk")[:limit]
    )
    escalated = 0
    for followup in due:
        company = followup.company
        claimed = (
            Followup.objects.for_company(company)
            .filter(pk=followup.pk, escalated_at__isnull=True, status__in=OPEN_STATUSES)
            .update(escalated_at=now, overdue_at=now)
        )
        if not claimed:
            continue
        try:
            _escalation_email(company=company, followup=followup)
        except TransientSendError as err:
            if all(d.status == DeliveryStatus.QUEUED for d in err.deliveries):
                # Nothing went out: the next sweep (a minute later) tries again.
                Followup.objects.for_company(company).filter(pk=followup.pk).update(
                    escalated_at=None
                )
            logger.warning("escalation email of %s deferred: %s", followup.public_id, err)
            continue
        _event(followup, FollowupEventKind.OVERDUE, data={"due_at": followup.due_at.isoformat()})
        escalated += 1
    return escalated


def _escalation_email(*, company: Company, followup: Followup) -> None:
    admins = (
        Membership.objects.for_company(company)
        .filter(role__in=[Role.OWNER, Role.ADMIN])
        .select_related("user")
        .order_by("id")
    )
    recipients = [
        Recipient(m.user.email, m.user.language or settings.LANGUAGE_CODE) for m in admins
    ]
    url = settings.SITE_URL + reverse(
        "inbox:followup", kwargs={"company_slug": company.slug, "followup_id": followup.public_id}
    )
    emails = render_emails(
        company=company,
        recipients=recipients,
        template="escalation",
        context={"company": company, "followup": followup, "url": url},
        metadata={"followup": followup.public_id},
        from_name=company.sender_name or company.name,
    )
    email_send(company=company, emails=emails)
