"""Digests: a daily or weekly email of the company's NPS to members who opt in and to extra
addresses, at the recipient's local hour, in their language.

How a digest goes out exactly once per occurrence:

* an occurrence is the recipient-local date (and ``hour``) a digest is due on; its key is
  ``"<frequency>:<local date>"``, and ``last_sent_for`` holds the last key claimed;
* the beat (``dashboards.digests_dispatch_due``, every few minutes) computes each active
  schedule's latest occurrence in the recipient's time zone and enqueues one
  ``dashboards.digest_send`` per schedule whose latest key is not claimed yet;
* the task recomputes the latest occurrence and claims it with a conditional UPDATE
  (``last_sent_for`` still what it read): two beats, two workers or a redelivered task never
  send the same occurrence twice. A transient provider error with nothing sent gives the
  claim back, and the next beat tries again.

The figures cover whole days in the company's time zone (the rollups' days): the last complete
day (daily) or the last seven (weekly) before the occurrence's instant, compared with the
period just before (DESIGN §4: a change is "up" or "down" only when significant), and the
all-time figure.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from companies.mail import render_email
from companies.models import Company, Membership
from companies.wake import wake_now
from dashboards.models import DigestAddress, DigestFrequency, DigestSchedule, DigestSubscription
from dashboards.selectors import PreviousFigures, company_zone, day_bounds, metrics_for
from notifications.email import OutgoingEmail, email_send
from notifications.models import Channel, DeliveryStatus
from notifications.transport import TransientSendError
from notifications.unsubscribe import unsubscribe_url
from responses.followups_emails import fallback_language
from responses.followups_selectors import followups_digest_counts
from responses.selectors import notable_comments

logger = logging.getLogger(__name__)

Kind = Literal["member", "address"]
MEMBER: Kind = "member"
ADDRESS: Kind = "address"
COMMENTS_SHOWN = 5
# Rows read per round trip by the sweep.
SWEEP_CHUNK = 500
TEMPLATE = "dashboards/digest_email"


# --- When (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    key: str  # "<frequency>:<recipient-local date>"
    day: date  # the recipient-local date it is due on
    at: datetime  # the instant it is due (UTC)


def zone_named(name: str, *, fallback: zoneinfo.ZoneInfo) -> zoneinfo.ZoneInfo:
    if not name:
        return fallback
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return fallback


def local_instant(day: date, hour: int, zone: zoneinfo.ZoneInfo) -> datetime:
    """``hour``:00 on ``day`` in ``zone``, as a UTC instant. An hour skipped by a DST change
    reads with the offset before it (02:30 on a spring-forward day is 03:30 new time); an hour
    that happens twice is its first time."""
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def latest_occurrence(
    *, frequency: str, weekday: int, hour: int, zone: zoneinfo.ZoneInfo, now: datetime
) -> Occurrence | None:
    """The latest occurrence at or before ``now`` of a schedule; None when it is off."""
    if frequency not in (DigestFrequency.DAILY, DigestFrequency.WEEKLY):
        return None
    today = now.astimezone(zone).date()
    for back in range(8):
        day = today - timedelta(days=back)
        if frequency == DigestFrequency.WEEKLY and day.weekday() != weekday:
            continue
        at = local_instant(day, hour, zone)
        if at <= now:
            return Occurrence(key=f"{frequency}:{day.isoformat()}", day=day, at=at)
    return None  # not reached: a week back always has one


def digest_period(*, company: Company, frequency: str, at: datetime) -> tuple[date, date]:
    """The whole company-local days a digest due at ``at`` reports on: the last complete
    day, or the seven before it for a weekly one."""
    until = at.astimezone(company_zone(company)).date() - timedelta(days=1)
    length = 7 if frequency == DigestFrequency.WEEKLY else 1
    return until - timedelta(days=length - 1), until


# --- Who ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestRecipient:
    address: str
    language: str
    zone: zoneinfo.ZoneInfo
    is_member: bool


def _ui_language(code: str) -> str:
    languages = {c for c, _name in settings.LANGUAGES}
    return code if code in languages else settings.LANGUAGE_CODE


def recipient_of(schedule: DigestSchedule, company: Company) -> DigestRecipient:
    """A member in their own time zone (blank: the company's) and language; an extra address
    in the company's time zone and default language."""
    if isinstance(schedule, DigestSubscription):
        user = schedule.membership.user
        return DigestRecipient(
            address=user.email,
            language=_ui_language(user.language),
            zone=zone_named(user.time_zone, fallback=company_zone(company)),
            is_member=True,
        )
    assert isinstance(schedule, DigestAddress)
    return DigestRecipient(
        address=schedule.email,
        language=fallback_language(company),
        zone=company_zone(company),
        is_member=False,
    )


# --- The sweep ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueDigest:
    kind: Kind
    company_id: int
    object_id: int
    key: str


def _active(model: type[DigestSchedule]) -> Iterator[DigestSchedule]:
    qs: Any = (
        model.objects.unscoped(reason="the digest sweep runs across companies")
        .exclude(frequency=DigestFrequency.OFF)
        .order_by("pk")
    )
    if model is DigestSubscription:
        qs = qs.filter(membership__user__is_active=True).select_related(
            "company", "membership__user"
        )
    else:
        qs = qs.select_related("company")
    return qs.iterator(chunk_size=SWEEP_CHUNK)


def digests_due(*, now: datetime | None = None) -> list[DueDigest]:
    """Every active schedule whose latest occurrence has not been claimed yet."""
    now = now or timezone.now()
    due: list[DueDigest] = []
    for kind, model in ((MEMBER, DigestSubscription), (ADDRESS, DigestAddress)):
        for schedule in _active(model):
            recipient = recipient_of(schedule, schedule.company)
            occurrence = latest_occurrence(
                frequency=schedule.frequency,
                weekday=schedule.weekday,
                hour=schedule.hour,
                zone=recipient.zone,
                now=now,
            )
            if occurrence is not None and occurrence.key != schedule.last_sent_for:
                due.append(DueDigest(kind, schedule.company_id, schedule.pk, occurrence.key))
    return due


def digests_dispatch_due(*, now: datetime | None = None) -> int:
    """The beat's job: one ``dashboards.digest_send`` task per due digest (the task claims;
    a digest enqueued twice still goes out once)."""
    due = digests_due(now=now)
    for digest in due:
        # Not claimed until a worker sends it: a lost message makes it due at the next run.
        wake_now("dashboards.digest_send", digest.company_id, digest.kind, digest.object_id)
    return len(due)


# --- Sending ------------------------------------------------------------------------------------


def _model(kind: Kind) -> type[DigestSchedule]:
    return DigestSubscription if kind == MEMBER else DigestAddress


def _schedule_get(*, company: Company, kind: Kind, object_id: int) -> DigestSchedule | None:
    qs: Any = _model(kind).objects.for_company(company).filter(pk=object_id)
    if kind == MEMBER:
        qs = qs.select_related("membership__user")
    schedule: DigestSchedule | None = qs.first()
    return schedule


def digest_send(
    *, company: Company, kind: Kind, object_id: int, now: datetime | None = None
) -> bool:
    """Send the schedule's latest occurrence if nobody has claimed it; True if this call
    sent it. Call outside a transaction (the post office commits its ledger first)."""
    now = now or timezone.now()
    schedule = _schedule_get(company=company, kind=kind, object_id=object_id)
    if schedule is None:
        return False  # the member left the company, or the address was removed
    if isinstance(schedule, DigestSubscription) and not schedule.membership.user.is_active:
        return False
    recipient = recipient_of(schedule, company)
    occurrence = latest_occurrence(
        frequency=schedule.frequency,
        weekday=schedule.weekday,
        hour=schedule.hour,
        zone=recipient.zone,
        now=now,
    )
    if occurrence is None or occurrence.key == schedule.last_sent_for:
        return False
    # Built before the claim: a database that fails here leaves the occurrence unclaimed
    # (the task's retry, or the next beat, sends it).
    email = digest_email(
        company=company,
        recipient=recipient,
        frequency=schedule.frequency,
        occurrence=occurrence,
        now=now,
    )
    previous_key = schedule.last_sent_for
    claimed = (
        _model(kind)
        .objects.for_company(company)
        .filter(pk=schedule.pk, last_sent_for=previous_key, frequency=schedule.frequency)
        .update(last_sent_for=occurrence.key)
    )
    if not claimed:
        return False  # another beat or worker has it (or the settings just changed)
    try:
        email_send(company=company, emails=[email])
    except TransientSendError as err:
        if all(d.status == DeliveryStatus.QUEUED for d in err.deliveries):
            # Nothing went out: give the claim back, the next beat tries again.
            _model(kind).objects.for_company(company).filter(
                pk=schedule.pk, last_sent_for=occurrence.key
            ).update(last_sent_for=previous_key)
        logger.warning("digest %s %s deferred: %s", kind, schedule.pk, err)
        return False
    return True


# --- What it says -------------------------------------------------------------------------------


def _change(previous: PreviousFigures | None) -> str:
    """ "up" / "down" only when significant (DESIGN §4); "same" otherwise; "none" when a
    period has no answer to compare."""
    if previous is None or previous["difference"] is None:
        return "none"
    if not previous["significant"]:
        return "same"
    return "up" if previous["difference"] > 0 else "down"


def digest_context(
    *, company: Company, frequency: str, occurrence: Occurrence, now: datetime
) -> dict[str, Any]:
    """Everything the digest shows (no language-dependent text: the templates make that)."""
    since, until = digest_period(company=company, frequency=frequency, at=occurrence.at)
    period = metrics_for(company=company, since=since, until=until)
    previous = period["previous"]
    all_time = metrics_for(company=company)
    start, end = day_bounds(company, since, until)
    followups = followups_digest_counts(company=company, start=start, end=end, now=now)
    comments = [
        {
            "score": r.score,
            "category": r.category,
            "comment": r.comment,
            "language": r.language,
            "survey": r.survey.name,
            # Never who answered an anonymous (eNPS) survey.
            "who": ""
            if r.survey.anonymous or r.contact is None
            else (r.contact.name or r.contact.email),
        }
        for r in notable_comments(company=company, since=start, until=end, limit=COMMENTS_SHOWN)
    ]
    query = urlencode({"period": "custom", "since": since.isoformat(), "until": until.isoformat()})
    dashboard = reverse("dashboards:dashboard", kwargs={"company_slug": company.slug})
    manage = reverse("dashboards:digest", kwargs={"company_slug": company.slug})
    inbox = reverse("inbox:list", kwargs={"company_slug": company.slug})
    return {
        "company": company,
        "frequency": frequency,
        "weekly": frequency == DigestFrequency.WEEKLY,
        "since": since,
        "until": until,
        "period": period,
        "previous": previous,
        "change": _change(previous),
        "change_points": abs(previous["difference"] or 0.0) if previous else 0.0,
        "all_time": all_time,
        "followups_new": followups["new"],
        "followups_overdue": followups["overdue"],
        "comments": comments,
        "dashboard_url": f"{settings.SITE_URL}{dashboard}?{query}",
        "manage_url": settings.SITE_URL + manage,
        "inbox_url": settings.SITE_URL + inbox,
    }


def digest_email(
    *,
    company: Company,
    recipient: DigestRecipient,
    frequency: str,
    occurrence: Occurrence,
    now: datetime,
) -> OutgoingEmail:
    """The digest for one recipient, rendered in their language."""
    context = digest_context(company=company, frequency=frequency, occurrence=occurrence, now=now)
    headers: dict[str, str] = {}
    if not recipient.is_member:
        # An extra address has no account: a one-click unsubscribe (RFC 8058) for it.
        url = unsubscribe_url(
            company=company,
            channel=Channel.EMAIL,
            address=recipient.address,
            language=recipient.language,
        )
        context["unsubscribe_url"] = url
        headers = {
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    context["is_member"] = recipient.is_member
    with translation.override(recipient.language), timezone.override(company_zone(company)):
        rendered = render_email(TEMPLATE, context)
    return OutgoingEmail(
        to=recipient.address,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        headers=headers,
        from_name=company.sender_name or company.name,
        metadata={"digest": occurrence.key, "kind": "member" if recipient.is_member else "address"},
    )


# --- Settings (writes) --------------------------------------------------------------------------


def _claim_key_on_change(
    schedule: DigestSchedule, recipient_zone: zoneinfo.ZoneInfo, now: datetime
) -> None:
    """A changed schedule starts with its next occurrence: the latest one that has passed
    counts as sent (unless a later one of the same frequency was)."""
    occurrence = latest_occurrence(
        frequency=schedule.frequency,
        weekday=schedule.weekday,
        hour=schedule.hour,
        zone=recipient_zone,
        now=now,
    )
    if occurrence is None:
        return
    kept = schedule.last_sent_for
    if kept.split(":")[0] == schedule.frequency and kept >= occurrence.key:
        return
    schedule.last_sent_for = occurrence.key


def digest_subscription_of(*, company: Company, membership: Membership) -> DigestSubscription:
    """The member's digest settings; an unsaved default (off, Monday, 08:00) if none yet."""
    found = DigestSubscription.objects.for_company(company).filter(membership=membership).first()
    return found or DigestSubscription(company=company, membership=membership)


def digest_subscription_save(
    *,
    company: Company,
    membership: Membership,
    frequency: str,
    weekday: int,
    hour: int,
    time_zone: str,
    now: datetime | None = None,
) -> DigestSubscription:
    """Set a member's own digest schedule and time zone (blank: the company's)."""
    if membership.company_id != company.pk:
        raise ValueError("the membership belongs to another company")
    now = now or timezone.now()
    user = membership.user
    with transaction.atomic():
        if user.time_zone != time_zone:
            user.time_zone = time_zone
            user.save(update_fields=["time_zone"])
        subscription = (
            DigestSubscription.objects.for_company(company)
            .select_for_update()
            .filter(membership=membership)
            .first()
        ) or DigestSubscription(company=company, membership=membership)
        zone = zone_named(time_zone, fallback=company_zone(company))
        _schedule_save(subscription, (frequency, weekday, hour), zone, now)
    return subscription


def digest_addresses(*, company: Company) -> list[DigestAddress]:
    return list(DigestAddress.objects.for_company(company).order_by("email", "pk"))


def digest_address_save(
    *,
    company: Company,
    email: str,
    frequency: str,
    weekday: int,
    hour: int,
    now: datetime | None = None,
) -> DigestAddress:
    """Add an extra address, or change its schedule if the company has it already."""
    now = now or timezone.now()
    email = email.strip().lower()
    with transaction.atomic():
        address = (
            DigestAddress.objects.for_company(company)
            .select_for_update()
            .filter(email=email)
            .first()
        ) or DigestAddress(company=company, email=email)
        _schedule_save(address, (frequency, weekday, hour), company_zone(company), now)
    return address


def _schedule_save(
    schedule: DigestSchedule,
    when: tuple[str, int, int],
    zone: zoneinfo.ZoneInfo,
    now: datetime,
) -> None:
    """Set (frequency, weekday, hour), count an occurrence already past as sent, and save."""
    schedule.frequency, schedule.weekday, schedule.hour = when
    schedule.updated_at = now
    _claim_key_on_change(schedule, zone, now)
    schedule.full_clean(exclude=["company", "membership"])
    schedule.save()


def digest_address_delete(*, company: Company, public_id: str) -> bool:
    deleted, _rows = DigestAddress.objects.for_company(company).filter(public_id=public_id).delete()
    return deleted > 0
