"""The send path: claim, hand over to the post office, record the results.

The way of an invitation: ``scheduled`` (waits in the database for its time) → ``queued``
(the dispatcher handed it to a send task) → ``sending`` (a send task claimed it with a
conditional UPDATE) → ``sent`` / ``failed`` / ``suppressed``. Only the task that moved a row
from queued to sending may call the provider for it, so a redelivered task, a retried one or
a second worker racing on the same ids never sends twice."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company
from companies.tenancy import tenant_update_per_row, tenant_update_rows
from notifications.models import Channel, DeliveryStatus
from surveys.models import (
    Invitation,
    InvitationEvent,
    InvitationStatus,
    Survey,
)
from surveys.services.campaigns import campaigns_mark_done
from surveys.services.invitations import SMS_CHANNELS, events_add
from surveys.services.links import answer_url_maker, score_link, sms_token_for
from surveys.tokens import token_for

_SENT_DELIVERY_STATUSES = frozenset({"sent", "delivered", "opened", "clicked"})


def _whatsapp_variables(*, company: Company, invitation: Invitation, link: str) -> dict[str, str]:
    """The template's numbered variables, as the company mapped them (default: 1 name,
    2 company, 3 link). Nobody is named in an anonymous survey."""
    from companies.services import WHATSAPP_DEFAULT_VARIABLES

    name = "" if invitation.survey.anonymous else invitation.contact.name.strip()
    values = {
        "name": name,
        "first_name": name.split(" ", 1)[0] if name else "",
        "company": company.name,
        "survey": invitation.survey.name,
        "link": link,
    }
    mapping = company.whatsapp_variables or WHATSAPP_DEFAULT_VARIABLES
    return {number: values.get(key, "") for number, key in mapping.items()}


@dataclass
class SendOutcome:
    """What one ``invitations_send`` call did, by invitation status."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0


def _claim(*, company: Company, invitation_ids: Sequence[int], reminder: bool) -> list[int]:
    """Claim the rows this call may send, in pk order; the rest belong to someone else.

    First sends: ``queued`` → ``sending`` (attempts + 1). Reminders: ``reminder_sent_at``
    from NULL to now, only for sent, unanswered, unexpired invitations.
    """
    now = timezone.now()
    with transaction.atomic():
        candidates = Invitation.objects.for_company(company).filter(pk__in=list(invitation_ids))
        if reminder:
            candidates = candidates.filter(
                status=InvitationStatus.SENT,
                answered_at__isnull=True,
                reminder_sent_at__isnull=True,
            ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        else:
            candidates = candidates.filter(status=InvitationStatus.QUEUED)
        claimed = list(
            candidates.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not claimed:
            return []
        rows = Invitation.objects.for_company(company).filter(pk__in=claimed)
        if reminder:
            rows.filter(reminder_sent_at__isnull=True).update(reminder_sent_at=now)
        else:
            # updated_at by hand (update() skips auto_now): the stale sweep times the claim.
            rows.filter(status=InvitationStatus.QUEUED).update(
                status=InvitationStatus.SENDING, attempts=F("attempts") + 1, updated_at=now
            )
    return claimed


def _score_placeholder(score: int) -> str:
    from notifications.email import merge_field

    return score_link(merge_field("answer_url"), score)


def _invitation_merge(
    invitation: Invitation,
    *,
    company: Company,
    with_name: bool,
    answer_url_for: Callable[[str], str],
    unsubscribe_url_for: Callable[[str], str],
) -> dict[str, str]:
    """The per-recipient values of one invitation email (see ``merge_field``)."""
    from notifications.unsubscribe import unsubscribe_token

    contact = invitation.contact
    assert contact.email
    values = {
        "answer_url": answer_url_for(token_for(invitation.token_nonce)),
        "unsubscribe_url": unsubscribe_url_for(
            unsubscribe_token(
                company=company,
                channel=Channel.EMAIL,
                address=contact.email,
                language=invitation.language,
            )
        ),
    }
    if with_name:
        values["name"] = contact.name.strip()
    return values


def invitations_send(
    *, company: Company, invitation_ids: Sequence[int], reminder: bool = False
) -> SendOutcome:
    """Send the given invitations (or their one reminder) that this call can claim.

    Claim first (see ``_claim``): only claimed rows are rendered and handed to the post
    office, whose delivery ledger gets one row per message before the provider is called.
    The email is rendered once per survey, language and greeting form with merge fields for
    the per-recipient links, so the post office can send it as provider batches.
    Per-recipient results: sent, failed (with the provider's reason: a permanent error is
    never retried) or suppressed.

    On ``notifications.email.TransientSendError`` the rows the provider did take are
    recorded, the undecided ones go back to ``queued`` keeping their Delivery row (the retry
    reuses it, so the post office never sends one twice; a reminder's claim is undone
    instead) and the error is re-raised for the task to retry later with backoff.
    Must not run inside a transaction: the ledger rows are committed before the provider
    call.
    """
    from notifications.transport import TransientSendError

    claimed = _claim(company=company, invitation_ids=invitation_ids, reminder=reminder)
    outcome = SendOutcome(claimed=len(claimed))
    if not claimed:
        return outcome
    invitations = list(
        Invitation.objects.for_company(company)
        .filter(pk__in=claimed)
        .select_related("contact")
        .order_by("pk")
    )
    # The batch's few surveys once each, not one (with its JSON texts decoded) per row.
    surveys = Survey.objects.for_company(company).in_bulk({i.survey_id for i in invitations})
    for invitation in invitations:
        invitation.survey = surveys[invitation.survey_id]
    now = timezone.now()
    texts = [i for i in invitations if i.channel in SMS_CHANNELS]
    emails = [i for i in invitations if i.channel not in SMS_CHANNELS]
    interrupted: TransientSendError | None = None
    # Each channel's transient error is kept until the other channel went out: the retry
    # claims only what is back in queued, so nothing is sent twice.
    if texts:
        try:
            _send_texts(
                company=company, invitations=texts, reminder=reminder, now=now, outcome=outcome
            )
        except TransientSendError as err:
            interrupted = err
    if emails:
        try:
            _send_emails(
                company=company, invitations=emails, reminder=reminder, now=now, outcome=outcome
            )
        except TransientSendError as err:
            interrupted = interrupted or err
    if not reminder:
        campaigns_mark_done(
            company=company,
            campaign_ids={i.campaign_id for i in invitations if i.campaign_id is not None},
        )
    if interrupted is not None:
        raise interrupted
    return outcome


def _send_emails(
    *,
    company: Company,
    invitations: Sequence[Invitation],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """The email part of ``invitations_send`` (claimed rows)."""
    from notifications.email import OutgoingEmail, email_send, merge_field
    from notifications.unsubscribe import unsubscribe_url_maker
    from surveys.emails import RenderedEmail, build_invitation_email

    message_kind = "reminder" if reminder else "invitation"
    answer_url_for = answer_url_maker()
    unsubscribe_url_for = unsubscribe_url_maker()
    rendered_by_form: dict[tuple[int, str, bool], RenderedEmail] = {}
    to_send: list[Invitation] = []
    emails: list[OutgoingEmail] = []
    unreachable: list[Invitation] = []
    for invitation in invitations:
        contact = invitation.contact
        if not contact.email:
            unreachable.append(invitation)
            continue
        with_name = bool(contact.name.strip())
        form = (invitation.survey_id, invitation.language, with_name)
        rendered = rendered_by_form.get(form)
        if rendered is None:
            rendered = rendered_by_form[form] = build_invitation_email(
                survey=invitation.survey,
                company=company,
                language=invitation.language,
                contact_name=merge_field("name") if with_name else "",
                answer_url=merge_field("answer_url"),
                score_url=_score_placeholder,
                unsubscribe_url=merge_field("unsubscribe_url"),
                reminder=reminder,
            )
        emails.append(
            OutgoingEmail(
                to=contact.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                headers={
                    "List-Unsubscribe": f"<{merge_field('unsubscribe_url')}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
                reply_to=company.reply_to or None,
                from_name=company.sender_name or company.name,
                metadata={"invitation": invitation.public_id, "message": message_kind},
                merge=_invitation_merge(
                    invitation,
                    company=company,
                    with_name=with_name,
                    answer_url_for=answer_url_for,
                    unsubscribe_url_for=unsubscribe_url_for,
                ),
                # A retry after a transient error reuses the row the first attempt wrote.
                delivery_id=None if reminder else invitation.delivery_id,
            )
        )
        to_send.append(invitation)
    _hand_over(
        company=company,
        to_send=to_send,
        unreachable=unreachable,
        send=lambda: email_send(company=company, emails=emails) if emails else [],
        reminder=reminder,
        now=now,
        outcome=outcome,
    )


def _send_texts(
    *,
    company: Company,
    invitations: Sequence[Invitation],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """The SMS/WhatsApp part of ``invitations_send`` (claimed rows).

    A recipient inside quiet hours (their local time) is not sent to: the row goes back to
    ``scheduled`` for the moment the window opens (the dispatcher picks it up then; no
    Celery ETA), its claim's attempt given back. One message per invitation, each with its
    own answer link; the post office's ledger and retry rules are those of email.
    """
    from notifications.sms import OutgoingSms, sms_send
    from surveys.sms import quiet_hours_until, sms_invitation_text, whatsapp_template

    answer_url_for = answer_url_maker()
    to_send: list[Invitation] = []
    messages: list[OutgoingSms] = []
    unreachable: list[Invitation] = []
    waiting: list[tuple[Invitation, datetime]] = []
    for invitation in invitations:
        contact = invitation.contact
        if not contact.phone:
            unreachable.append(invitation)
            continue
        opens = quiet_hours_until(contact=contact, company=company, now=now)
        if opens is not None:
            waiting.append((invitation, opens))
            continue
        link = answer_url_for(sms_token_for(invitation))
        body = sms_invitation_text(
            survey=invitation.survey,
            company=company,
            language=invitation.language,
            name=contact.name,
            link=link,
        )
        template = whatsapp_template(
            company=company, survey=invitation.survey, language=invitation.language
        )
        messages.append(
            OutgoingSms(
                to=contact.phone,
                body=body,
                channel=invitation.channel,
                # WhatsApp: a business-initiated message must be an approved template.
                content_sid=template if invitation.channel == Channel.WHATSAPP else "",
                content_variables=(
                    _whatsapp_variables(company=company, invitation=invitation, link=link)
                    if template and invitation.channel == Channel.WHATSAPP
                    else {}
                ),
                metadata={
                    "invitation": invitation.public_id,
                    "message": "reminder" if reminder else "invitation",
                },
                delivery_id=None if reminder else invitation.delivery_id,
            )
        )
        to_send.append(invitation)
    _wait_for_window(company=company, waiting=waiting, reminder=reminder)
    _hand_over(
        company=company,
        to_send=to_send,
        unreachable=unreachable,
        send=lambda: sms_send(company=company, messages=messages) if messages else [],
        reminder=reminder,
        now=now,
        outcome=outcome,
    )


def _hand_over(
    *,
    company: Company,
    to_send: Sequence[Invitation],
    unreachable: Sequence[Invitation],
    send: Callable[[], Sequence[Any]],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """The end of a send, whatever the channel: the unreachable fail, ``send`` hands
    ``to_send`` to the post office (deliveries in the same order), and each result is
    recorded; a transient error puts the undecided rows back and is raised for the retry."""
    from notifications.transport import TransientSendError

    outcome.failed += _record_unreachable(
        company=company, invitations=unreachable, reminder=reminder
    )
    try:
        deliveries = send()
    except TransientSendError as err:
        _send_interrupted(
            company=company,
            invitations=to_send,
            deliveries=err.deliveries,
            reminder=reminder,
            now=now,
        )
        raise
    results = list(zip(to_send, deliveries, strict=True))
    record_results(company=company, results=results, reminder=reminder, now=now, outcome=outcome)


def _wait_for_window(
    *, company: Company, waiting: Sequence[tuple[Invitation, datetime]], reminder: bool
) -> None:
    """Claimed SMS invitations inside quiet hours wait in the database for their window."""
    if not waiting:
        return
    rows = Invitation.objects.for_company(company)
    for invitation, opens in waiting:
        if reminder:
            # The reminder dispatcher finds it again once the claim is undone.
            rows.filter(pk=invitation.pk).update(reminder_sent_at=None)
        else:
            rows.filter(pk=invitation.pk, status=InvitationStatus.SENDING).update(
                status=InvitationStatus.SCHEDULED,
                scheduled_for=opens,
                attempts=F("attempts") - 1,
                updated_at=timezone.now(),
            )
    events_add(
        company,
        [
            (invitation.pk, "waiting", f"quiet hours: sent after {opens.isoformat()}")
            for invitation, opens in waiting
            if not reminder
        ],
    )


def _record_unreachable(
    *, company: Company, invitations: Sequence[Invitation], reminder: bool
) -> int:
    """Claimed invitations whose contact has no address on their channel (any more): failed."""
    if not invitations:
        return 0
    if invitations[0].channel in SMS_CHANNELS:
        reason = _("The contact has no phone number.")
    else:
        reason = _("The contact has no email address.")
    if not reminder:
        Invitation.objects.for_company(company).filter(pk__in=[i.pk for i in invitations]).update(
            status=InvitationStatus.FAILED, failed_reason=reason
        )
    event = "reminder_failed" if reminder else "failed"
    events_add(company, [(i.pk, event, reason) for i in invitations])
    return len(invitations)


def record_results(
    *,
    company: Company,
    results: Sequence[tuple[Invitation, Any]],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """Write each invitation's result (one bulk update) and its timeline event (one insert).

    A delivery still ``queued``/``sending`` is undecided: its call's outcome is unknown (the
    provider's answer was lost) or another worker has it. The invitation stays ``sending``,
    linked to its delivery, and the stale sweep settles it from the ledger: it is never
    failed here, and never sent again blindly.
    """
    events: list[tuple[int, str, str]] = []
    changed = []
    undecided = []
    for invitation, delivery in results:
        status = delivery.status
        if delivery_undecided(delivery):
            undecided.append((invitation.pk, delivery.pk))
            if status == DeliveryStatus.SENDING:
                events.append((invitation.pk, "outcome_unknown", _OUTCOME_UNKNOWN))
            continue
        if status in _SENT_DELIVERY_STATUSES:
            outcome.sent += 1
            event, detail = ("reminder_sent" if reminder else "sent"), ""
            if not reminder:
                invitation.status = InvitationStatus.SENT
                invitation.sent_at = delivery.sent_at or now
                invitation.expires_at = now + timedelta(days=invitation.survey.link_valid_days)
        elif status == "suppressed":
            outcome.suppressed += 1
            event, detail = ("reminder_suppressed" if reminder else "suppressed"), ""
            if not reminder:
                invitation.status = InvitationStatus.SUPPRESSED
        else:
            outcome.failed += 1
            detail = (delivery.error or status)[:500]
            event = "reminder_failed" if reminder else "failed"
            if not reminder:
                invitation.status = InvitationStatus.FAILED
                invitation.failed_reason = detail
        if not reminder:
            invitation.delivery = delivery
            changed.append(invitation)
        events.append((invitation.pk, event, detail))
    if changed:
        _save_results(company, changed)
    if not reminder:
        _link_undecided(company, undecided)
    events_add(company, events)


def _link_undecided(company: Company, undecided: Sequence[tuple[int, int]]) -> None:
    """Link ``(invitation, delivery)`` pairs without an outcome yet: only the link, and only
    while still sending (another worker may hold the row after a lease ran out and record its
    outcome); the stale sweep settles them from the ledger. Two statements for any number."""
    if not undecided:
        return
    sending = set(
        Invitation.objects.for_company(company)
        .filter(pk__in=[pk for pk, _delivery in undecided], status=InvitationStatus.SENDING)
        .values_list("pk", flat=True)
    )
    values = [(pk, delivery) for pk, delivery in undecided if pk in sending]
    if connection.vendor != "postgresql":
        for pk, delivery in values:
            Invitation.objects.for_company(company).filter(pk=pk).update(delivery_id=delivery)
        return
    tenant_update_per_row(Invitation, company=company, field_name="delivery", values=values)


_RESULT_FIELDS = ["status", "sent_at", "expires_at", "failed_reason", "delivery"]
_OUTCOME_UNKNOWN = "the provider's answer was lost: looked up before anything is sent again"


def delivery_undecided(delivery: Any) -> bool:
    """The ledger row has no outcome yet (not sent, or its call's outcome is unknown)."""
    return delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


def _save_results(company: Company, rows: list[Invitation]) -> None:
    """Write the result fields of ``rows`` as they are in memory (same result as bulk_update).

    ``bulk_update`` builds one CASE per field and row, which cost most of a send: on
    PostgreSQL ``tenant_update_rows`` writes them in one statement per group of alike rows.
    Other databases keep ``bulk_update``. Like the bulk_update it replaces, this leaves
    updated_at alone: these rows leave queued/sending, the only states the stale sweep times.
    """
    if connection.vendor != "postgresql":
        Invitation.objects.for_company(company).bulk_update(rows, _RESULT_FIELDS)
        return
    tenant_update_rows(
        Invitation,
        company=company,
        rows=rows,
        shared=["status", "sent_at", "expires_at", "failed_reason"],
        per_row="delivery",
    )


def _send_interrupted(
    *,
    company: Company,
    invitations: Sequence[Invitation],
    deliveries: Sequence[Any],
    reminder: bool,
    now: datetime,
) -> None:
    """After a transient error: rows with an outcome (and those whose outcome is unknown)
    are recorded as ``record_results`` does; the rows the provider certainly did not get
    (their delivery still ``queued``, or none written) are given back for the retry."""
    settled = []
    given_back = []
    for invitation, delivery in zip(invitations, deliveries, strict=False):
        if delivery.status == DeliveryStatus.QUEUED:
            given_back.append((invitation, delivery))
        else:
            settled.append((invitation, delivery))
    # Rows the post office never reached (no delivery returned) go back too.
    given_back += [(i, None) for i in invitations[len(deliveries) :]]
    record_results(
        company=company, results=settled, reminder=reminder, now=now, outcome=SendOutcome()
    )
    if reminder:
        Invitation.objects.for_company(company).filter(
            pk__in=[i.pk for i, _delivery in given_back]
        ).update(reminder_sent_at=None)
        return
    requeued_at = timezone.now()
    rows = Invitation.objects.for_company(company)
    for invitation, delivery in given_back:
        # Conditional: a row another worker took over (a lease that ran out) is its own.
        rows.filter(pk=invitation.pk, status=InvitationStatus.SENDING).update(
            status=InvitationStatus.QUEUED,
            delivery=delivery,
            updated_at=requeued_at,  # the stale sweep times "queued" from here
        )
    events = [
        InvitationEvent(company=company, invitation=i, event="retry", detail="transient error")
        for i, _delivery in given_back
    ]
    InvitationEvent.objects.bulk_create(events)


def invitations_give_up(
    *, company: Company, invitation_ids: Sequence[int], reason: str, reminder: bool = False
) -> int:
    """The last retry failed too: queued invitations become failed with ``reason``.

    For reminders the claim stays taken (no reminder is tried again); an event records why.
    """
    rows = Invitation.objects.for_company(company).filter(pk__in=list(invitation_ids))
    if reminder:
        ids = list(rows.filter(reminder_sent_at__isnull=True).values_list("pk", flat=True))
        rows.filter(pk__in=ids).update(reminder_sent_at=timezone.now())
        event = "reminder_failed"
    else:
        ids = list(rows.filter(status=InvitationStatus.QUEUED).values_list("pk", flat=True))
        Invitation.objects.for_company(company).filter(
            pk__in=ids, status=InvitationStatus.QUEUED
        ).update(status=InvitationStatus.FAILED, failed_reason=reason[:500])
        event = "failed"
    InvitationEvent.objects.bulk_create(
        InvitationEvent(company=company, invitation_id=pk, event=event, detail=reason[:500])
        for pk in ids
    )
    return len(ids)


# A send the provider could not take (network, 429, 5xx) waits in the database for its next
# attempt, with exponential backoff and jitter: 10 s, 20 s, 40 s … capped at 10 minutes; the
# attempt that makes SEND_MAX_ATTEMPTS fails the invitation.
SEND_MAX_ATTEMPTS = 8
SEND_BACKOFF_BASE = 10.0
SEND_BACKOFF_MAX = 600.0


def send_retry_delay(attempts: int, *, at_least: float = 0) -> timedelta:
    """How long an invitation that has made ``attempts`` attempts waits for the next."""
    backoff = min(SEND_BACKOFF_MAX, SEND_BACKOFF_BASE * 2 ** max(0, attempts - 1))
    jittered = backoff / 2 + random.uniform(0, backoff / 2)  # noqa: S311 (jitter)
    return timedelta(seconds=max(jittered, at_least))


def invitations_retry_later(
    *,
    company: Company,
    invitation_ids: Sequence[int],
    at_least: float = 0,
    reminder: bool = False,
) -> None:
    """After a transient error: the given-back (``queued``) invitations wait in the database
    for their next attempt (``send_retry_delay``, at least ``at_least`` seconds: a provider's
    Retry-After); the dispatcher picks them up when due. Those that made
    ``SEND_MAX_ATTEMPTS`` fail instead. Reminders need nothing: their claim was undone, the
    reminder dispatcher finds them again."""
    if reminder:
        return
    rows = Invitation.objects.for_company(company).filter(
        pk__in=list(invitation_ids), status=InvitationStatus.QUEUED
    )
    by_attempts: dict[int, list[int]] = {}
    for pk, attempts in rows.values_list("pk", "attempts"):
        by_attempts.setdefault(attempts, []).append(pk)
    spent = [
        pk for attempts, pks in by_attempts.items() if attempts >= SEND_MAX_ATTEMPTS for pk in pks
    ]
    if spent:
        invitations_give_up(
            company=company,
            invitation_ids=spent,
            reason=f"gave up after {SEND_MAX_ATTEMPTS} attempts (provider unavailable)",
        )
    now = timezone.now()
    for attempts, pks in by_attempts.items():
        if attempts < SEND_MAX_ATTEMPTS:
            rows.filter(pk__in=pks).update(
                status=InvitationStatus.SCHEDULED,
                scheduled_for=now + send_retry_delay(attempts, at_least=at_least),
                updated_at=now,
            )
