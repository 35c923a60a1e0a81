"""Alert rules: matching a response, and raising each rule's alert exactly once.

The flow (``responses.receivers`` → ``responses.tasks.alert_evaluate`` → ``alerts_evaluate``):

1. In one transaction, for every enabled rule that matches the response as it is now, insert
   its row in the alert ledger (``AlertFiring``; unique per rule and response). A rule that
   fired before for this response (another edit, a racing worker, a redelivered task) loses
   on the unique constraint and does nothing: an edit that crosses into detractor raises the
   alert once, a later edit raises nothing.
2. Rules with the follow-up action open the response's follow-up (one per response) or, if it
   exists, the thread records the edit (a new comment, a changed score) as an event.
3. In the same transaction, the rule's Slack post and ``alert.triggered`` webhook event are
   queued (notifications.webhooks: claimed before each attempt, retried on transient
   failure), so each exists exactly when the ledger row does.
4. After the commit, each ledger row whose email is pending is claimed (pending → sending)
   and its emails go out through the post office; a crash between commit and send leaves the
   row pending and the redelivered task sends it, a crash during the send leaves it
   ``sending`` and it is never sent twice.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.models import Company, Membership, Role
from notifications.email import OutgoingEmail, email_send
from notifications.models import Delivery
from notifications.transport import TransientSendError
from responses.followups import followup_open_for_alert
from responses.followups_emails import Recipient, fallback_language, render_emails
from responses.models import (
    DEFAULT_RULE_NAME,
    AlertFiring,
    AlertRule,
    Category,
    Followup,
    Response,
)
from responses.webhook_events import alert_actions_queue

logger = logging.getLogger(__name__)

EMAIL_ROLES = (Role.OWNER, Role.ADMIN, Role.MANAGER, Role.AGENT, Role.VIEWER)
MAX_WORDS = 50
MAX_ADDRESSES = 20


# --- Matching (pure) -----------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Text compared case- and language-insensitively: NFKC, ``casefold`` (which also folds
    ß, final sigma and Cyrillic/Kazakh capitals), and ё → е (Russian writes both)."""
    return unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")


def _word_pattern(word: str) -> re.Pattern[str] | None:
    """A whole word (or phrase), or a prefix when it ends in ``*``; None for a blank word."""
    prefix = word.endswith("*")
    term = normalize_text(word.rstrip("*").strip())
    if not term:
        return None
    tail = "" if prefix else r"(?!\w)"
    # \w is Unicode-aware on str patterns: Cyrillic and Kazakh letters are word characters.
    return re.compile(r"(?<!\w)" + re.escape(term) + tail)


def comment_has_any(comment: str, words: Iterable[str]) -> bool:
    text = normalize_text(comment)
    for word in words:
        pattern = _word_pattern(str(word))
        if pattern is not None and pattern.search(text):
            return True
    return False


@dataclass(frozen=True)
class ResponseFacts:
    """What a rule looks at, gathered once per response."""

    survey_id: int
    score: int
    category: str
    comment: str
    properties: dict[str, object]
    anonymous: bool
    is_first_of_contact: bool


def _property_holds(rule: AlertRule, facts: ResponseFacts) -> bool:
    # Never single out a respondent who was promised anonymity.
    if facts.anonymous or rule.property_key not in facts.properties:
        return False
    value = normalize_text(str(facts.properties[rule.property_key])).strip()
    return value == normalize_text(rule.property_value).strip()


def rule_matches(rule: AlertRule, facts: ResponseFacts) -> bool:
    """Every condition the rule sets holds (an unset condition holds)."""
    checks = (
        rule.enabled,
        rule.survey_id is None or rule.survey_id == facts.survey_id,
        not rule.category or rule.category == facts.category,
        rule.score_min is None or facts.score >= rule.score_min,
        rule.score_max is None or facts.score <= rule.score_max,
        not rule.first_response_only or (not facts.anonymous and facts.is_first_of_contact),
    )
    if not all(checks):
        return False
    if rule.words and not comment_has_any(facts.comment, rule.words):
        return False
    return not rule.property_key or _property_holds(rule, facts)


def response_facts(response: Response) -> ResponseFacts:
    anonymous = response.survey.anonymous
    first = False
    if response.contact_id is not None and not anonymous:
        first = (
            not Response.objects.for_company(response.company)
            .filter(contact_id=response.contact_id, created_at__lt=response.created_at)
            .exists()
        )
    properties = {} if anonymous else dict(response.contact_properties or {})
    return ResponseFacts(
        survey_id=response.survey_id,
        score=response.score,
        category=response.category,
        comment=response.comment,
        properties=properties,
        anonymous=anonymous,
        is_first_of_contact=first,
    )


# --- Rules -------------------------------------------------------------------------------------


def alert_rule_create_default(*, company: Company) -> AlertRule:
    """A new company's rule: every detractor opens a follow-up and emails the agents."""
    return AlertRule.objects.create(
        company=company,
        name=DEFAULT_RULE_NAME,
        category=Category.DETRACTOR,
        email_roles=[Role.AGENT.value],
        create_followup=True,
        is_default=True,
    )


RULE_FIELDS = (
    "name",
    "enabled",
    "survey",
    "category",
    "score_min",
    "score_max",
    "words",
    "property_key",
    "property_value",
    "first_response_only",
    "email_roles",
    "email_member_ids",
    "email_addresses",
    "create_followup",
    "notify_slack",
    "slack_webhook_url",
    "notify_webhook",
)


def alert_rule_save(
    *, company: Company, rule: AlertRule | None = None, **fields: object
) -> AlertRule:
    """Create (``rule`` None) or change a rule; ``fields`` are AlertRule fields (a form's
    cleaned values). A chosen survey must be the company's."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"not rule fields: {sorted(unknown)}")
    survey = fields.get("survey")
    if survey is not None and getattr(survey, "company_id", None) != company.pk:
        raise ValueError("the survey belongs to another company")
    if rule is None:
        rule = AlertRule(company=company)
    elif rule.company_id != company.pk:
        raise ValueError("the rule belongs to another company")
    created = rule._state.adding
    before = {} if created else snapshot(rule, fields)
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.updated_at = timezone.now()
    rule.full_clean(exclude=["company", "survey"])
    with transaction.atomic():
        rule.save()
        changes = changes_between(before, snapshot(rule, fields), secret=["slack_webhook_url"])
        if created or changes:
            audit_record(
                company=company,
                action=AuditAction.ALERT_RULE_CREATED
                if created
                else AuditAction.ALERT_RULE_UPDATED,
                target=rule,
                changes=changes,
            )
    return rule


def alert_rule_delete(*, company: Company, rule: AlertRule) -> None:
    """Delete a rule; its ledger rows go with it (follow-ups stay)."""
    with transaction.atomic():
        if AlertRule.objects.for_company(company).filter(pk=rule.pk).delete()[0]:
            audit_record(company=company, action=AuditAction.ALERT_RULE_DELETED, target=rule)


def alert_rules_for(*, company: Company) -> list[AlertRule]:
    return list(
        AlertRule.objects.for_company(company).select_related("survey").order_by("created_at", "id")
    )


# --- Evaluation ----------------------------------------------------------------------------------


def alerts_evaluate(*, company: Company, response_id: int) -> list[AlertFiring]:
    """Raise the alerts a saved response calls for and send their emails; the ledger rows
    created now. Safe to run any number of times, concurrently too (see the module
    docstring). The answer path runs this through ``responses.effects``."""
    response = (
        Response.objects.for_company(company)
        .select_related("survey", "contact")
        .filter(pk=response_id)
        .first()
    )
    if response is None:
        return []  # deleted since it was saved
    with transaction.atomic():
        fired = alerts_raise(company=company, response=response)
    alert_emails_send_pending(company=company, response_id=response.pk)
    return fired


def alerts_raise(*, company: Company, response: Response) -> list[AlertFiring]:
    """Steps 1–3 of the module docstring, in the caller's transaction: the ledger rows of
    the rules that match now (each rule once per response), the follow-up, the Slack and
    webhook actions. The emails are left pending for ``alert_emails_send_pending``."""
    facts = response_facts(response)
    rules = [
        rule
        # In pk order: racing workers take the ledger's row locks in the same order.
        for rule in AlertRule.objects.for_company(company).filter(enabled=True).order_by("pk")
        if rule_matches(rule, facts)
    ]
    fired: list[AlertFiring] = []
    now = timezone.now()
    commented = bool(response.comment.strip())
    for rule in rules:
        firing = AlertFiring(
            company=company,
            rule=rule,
            response=response,
            score=response.score,
            fired_at=now,
            # A score alone: the comment usually follows within a minute, and the alert
            # should carry it (sent once, when it lands or when the wait is over).
            email_not_before=None if commented else now + _comment_wait(),
            email_status=(
                AlertFiring.EmailStatus.PENDING
                if _has_email_action(rule)
                else AlertFiring.EmailStatus.NONE
            ),
        )
        try:
            with transaction.atomic():  # a savepoint: losing the race keeps the rest
                firing.save(force_insert=True)
        except IntegrityError:
            continue  # this rule already alerted on this response
        fired.append(firing)
    if commented:
        # The comment has landed: emails waiting for it are due now.
        AlertFiring.objects.for_company(company).filter(
            response=response,
            email_status=AlertFiring.EmailStatus.PENDING,
            email_not_before__gt=now,
        ).update(email_not_before=now)
    followup_rules = [f.rule for f in fired if f.rule.create_followup]
    followup = followup_open_for_alert(company=company, response=response, rules=followup_rules)
    for firing in fired:  # Slack and webhook actions: queued with the ledger row
        alert_actions_queue(company=company, rule=firing.rule, response=response, followup=followup)
    return fired


def _comment_wait() -> timedelta:
    return timedelta(seconds=settings.ALERT_COMMENT_WAIT_SECONDS)


def alert_email_due() -> Q:
    """Pending alert emails whose wait for a comment is over (or that never waited)."""
    return Q(email_not_before__isnull=True) | Q(email_not_before__lte=timezone.now())


def _has_email_action(rule: AlertRule) -> bool:
    return bool(rule.email_roles or rule.email_member_ids or rule.email_addresses)


def alert_emails_send_pending(*, company: Company, response_id: int) -> int:
    """Send the emails of this response's pending ledger rows, each claimed first; the count
    of rows sent. Call outside a transaction (the post office commits its ledger first)."""
    pending = list(
        AlertFiring.objects.for_company(company)
        .filter(response_id=response_id, email_status=AlertFiring.EmailStatus.PENDING)
        .filter(alert_email_due())
        .select_related("rule", "response__survey", "response__contact")
    )
    sent = 0
    for firing in pending:
        claimed = (
            AlertFiring.objects.for_company(company)
            .filter(pk=firing.pk, email_status=AlertFiring.EmailStatus.PENDING)
            .update(email_status=AlertFiring.EmailStatus.SENDING, email_woken_at=timezone.now())
        )
        if not claimed:
            continue  # another worker has it
        earlier = firing.deliveries or {}
        emails = [
            replace(email, delivery_id=earlier.get(email.to))
            for email in _alert_emails(company=company, firing=firing)
        ]
        try:
            email_send(company=company, emails=emails)
        except TransientSendError as err:
            # Back to pending with the ledger rows: the task's retry sends what is left.
            AlertFiring.objects.for_company(company).filter(pk=firing.pk).update(
                email_status=AlertFiring.EmailStatus.PENDING,
                deliveries={e.to: d.pk for e, d in zip(emails, err.deliveries, strict=True)},
            )
            raise
        AlertFiring.objects.for_company(company).filter(pk=firing.pk).update(
            email_status=AlertFiring.EmailStatus.SENT
        )
        sent += 1
    return sent


def ledger_rows_by_address(firing: AlertFiring) -> dict[str, int]:
    """{address: Delivery id} of the emails an earlier attempt wrote for this alert (their
    metadata names it), for a retry after its worker died."""
    rows = (
        Delivery.objects.filter(company_id=firing.company_id)
        .filter(metadata__alert=str(firing.pk))
        .order_by("pk")
        .values_list("to", "pk")
    )
    return dict(rows)


# --- Emails ------------------------------------------------------------------------------------


def rule_recipients(*, company: Company, rule: AlertRule) -> list[Recipient]:
    """Members by role or by choice (in their language) and the extra addresses.

    If that is nobody (a new company has no agents yet), the owners: an alert must never
    vanish silently.
    """
    members = Membership.objects.for_company(company).select_related("user")
    chosen = [
        m
        for m in members
        if m.role in (rule.email_roles or []) or m.public_id in (rule.email_member_ids or [])
    ]
    if not chosen and not rule.email_addresses:
        chosen = [m for m in members if m.role == Role.OWNER]
    seen: set[str] = set()
    out: list[Recipient] = []
    for membership in chosen:
        address = membership.user.email.strip().lower()
        if address and address not in seen:
            seen.add(address)
            out.append(Recipient(address, membership.user.language or settings.LANGUAGE_CODE))
    for raw in rule.email_addresses or []:
        address = str(raw).strip().lower()
        if address and address not in seen:
            seen.add(address)
            out.append(Recipient(address, fallback_language(company)))
    return out


def _alert_emails(*, company: Company, firing: AlertFiring) -> list[OutgoingEmail]:
    response = firing.response
    followup = Followup.objects.for_company(company).filter(response=response).first()
    if followup is not None:
        url = reverse(
            "inbox:followup",
            kwargs={"company_slug": company.slug, "followup_id": followup.public_id},
        )
    else:
        url = reverse("responses:list", kwargs={"company_slug": company.slug})
    anonymous = response.survey.anonymous
    contact = None if anonymous else response.contact
    context: dict[str, object] = {
        "company": company,
        "rule": firing.rule,
        "response": response,
        "survey": response.survey,
        "contact": contact,
        "anonymous": anonymous,
        "url": settings.SITE_URL + url,
    }
    return render_emails(
        company=company,
        recipients=rule_recipients(company=company, rule=firing.rule),
        template="alert",
        context=context,
        metadata={"alert": str(firing.pk), "response": response.public_id},
        from_name=company.sender_name or company.name,
    )
