"""Writes for responses: recording an answer, and the web link's signed identities."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from companies.models import Company
from responses.models import OWED_CREATED, OWED_UPDATED, Response, ResponseChannel, category_of
from responses.signals import response_saved
from surveys.models import Contact, Invitation, Survey
from surveys.services.invitations import invitation_mark_answered

COMMENT_MAX_CHARS = 5000
EXTRA_TEXT_MAX_CHARS = 1000
SURVEY_LANGUAGE_CODES = frozenset({"en", "ru", "kk"})


# --- Validation ------------------------------------------------------------------------------


def _clean_score(score: object) -> int:
    # bool is an int in Python: True must not count as a score of 1.
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValidationError({"score": _("Choose a score from 0 to 10.")})
    return score


def _clean_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    comment = comment.strip()
    if len(comment) > COMMENT_MAX_CHARS:
        raise ValidationError(
            {"comment": _("Please keep it under %(n)d characters.") % {"n": COMMENT_MAX_CHARS}}
        )
    return comment


def clean_extra_answers(*, survey: Survey, answers: dict[str, Any]) -> dict[str, Any]:
    """Check answers against ``survey.extra_questions``; blank answers are dropped.

    A choice is stored as the index of the chosen option (stable across languages), a text
    answer as the trimmed text.
    """
    questions = {q.get("id"): q for q in survey.extra_questions or [] if isinstance(q, dict)}
    cleaned: dict[str, Any] = {}
    errors: list[str] = []
    for qid, value in answers.items():
        question = questions.get(qid)
        if question is None:
            errors.append(_("Unknown question %(id)s.") % {"id": qid})
            continue
        if value is None or value == "":
            continue
        if question.get("kind") == "choice":
            try:
                index = int(value)
            except (TypeError, ValueError):
                index = -1
            if isinstance(value, bool) or not 0 <= index < len(question.get("choices") or []):
                errors.append(_("Choose one of the options for question %(id)s.") % {"id": qid})
                continue
            cleaned[qid] = index
        else:
            text = str(value).strip()
            if len(text) > EXTRA_TEXT_MAX_CHARS:
                errors.append(
                    _("Please keep the answer to %(id)s under %(n)d characters.")
                    % {"id": qid, "n": EXTRA_TEXT_MAX_CHARS}
                )
                continue
            if text:
                cleaned[qid] = text
    if errors:
        raise ValidationError({"extra_answers": errors})
    return cleaned


# --- Recording an answer ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """A validated answer, ready to be written."""

    survey: Survey
    invitation: Invitation | None
    browser_key: str | None
    identity: Contact | None  # what the row may show: None for anonymous surveys
    snapshot_contact: Contact | None
    score: int
    comment: str | None
    extras: dict[str, Any] | None
    cleared: frozenset[str]  # extra questions answered blank now: clear earlier answers
    channel: str
    language: str
    properties: dict[str, Any] | None  # what the page passed (widget): snapshotted at first


def _locked_existing(answer: _Answer) -> Response | None:
    qs = Response.objects.for_company(answer.survey.company).select_for_update()
    if answer.invitation is not None:
        return qs.filter(invitation=answer.invitation).first()
    return qs.filter(survey=answer.survey, browser_key=answer.browser_key).first()


def _new(answer: _Answer) -> Response:
    """The unsaved row of a first answer."""
    now = timezone.now()
    contact, invitation = answer.snapshot_contact, answer.invitation
    return Response(
        company=answer.survey.company,
        survey=answer.survey,
        invitation=invitation,
        contact=answer.identity,
        score=answer.score,
        category=category_of(answer.score),
        comment=answer.comment or "",
        extra_answers=answer.extras or {},
        channel=answer.channel,
        language=answer.language,
        contact_properties=dict(contact.properties) if contact else {},
        invitation_properties=(
            dict(invitation.properties) if invitation else dict(answer.properties or {})
        ),
        browser_key=answer.browser_key,
        created_at=now,
        updated_at=now,
        # Owed in the same INSERT: the webhook event and the alert evaluation.
        owed_event=OWED_CREATED,
        owed_at=now,
    )


def _update(response: Response, answer: _Answer) -> None:
    response.score = answer.score
    response.category = category_of(answer.score)
    response.language = answer.language
    response.updated_at = timezone.now()
    # The row is locked: an event not yet out stays "created" (it carries the latest state).
    if response.owed_event != OWED_CREATED:
        response.owed_event = OWED_UPDATED
    response.owed_at = response.owed_at or response.updated_at
    fields = ["score", "category", "language", "updated_at", "owed_event", "owed_at"]
    if answer.comment is not None:
        response.comment = answer.comment
        fields.append("comment")
    if answer.extras is not None:
        merged = {**response.extra_answers, **answer.extras}
        response.extra_answers = {k: v for k, v in merged.items() if k not in answer.cleared}
        fields.append("extra_answers")
    if answer.identity is not None and response.contact_id is None:
        response.contact = answer.identity
        fields.append("contact")
    response.save(update_fields=fields)


def _clean_answer(
    *,
    invitation: Invitation | None,
    survey: Survey,
    score: object,
    comment: str | None,
    extra_answers: dict[str, Any] | None,
    channel: str,
    language: str,
    contact: Contact | None,
    browser_key: str | None,
    properties: dict[str, Any] | None = None,
) -> _Answer:
    extras = (
        None if extra_answers is None else clean_extra_answers(survey=survey, answers=extra_answers)
    )
    if channel not in ResponseChannel.values:
        raise ValidationError({"channel": _("Unknown channel.")})
    if invitation is not None:
        if invitation.company_id != survey.company_id or invitation.survey_id != survey.pk:
            raise ValueError("the invitation belongs to another survey")
        contact, browser_key = invitation.contact, None
    elif browser_key is None:
        raise ValueError("an answer without an invitation needs a browser_key")
    return _Answer(
        survey=survey,
        invitation=invitation,
        browser_key=browser_key,
        identity=None if survey.anonymous else contact,
        snapshot_contact=contact,
        score=_clean_score(score),
        comment=_clean_comment(comment),
        extras=extras,
        cleared=frozenset(extra_answers or {}) - frozenset(extras or {}),
        channel=channel,
        language=language if language in SURVEY_LANGUAGE_CODES else survey.default_language,
        properties=properties,
    )


def response_record(
    *,
    invitation: Invitation | None,
    survey: Survey,
    score: int,
    comment: str | None = None,
    extra_answers: dict[str, Any] | None = None,
    channel: str,
    language: str,
    contact: Contact | None = None,
    browser_key: str | None = None,
    properties: dict[str, Any] | None = None,
    first_answer: bool = False,
) -> Response:
    """Record an answer, or update the one already given (one per invitation / browser).

    ``first_answer``: the caller knows of no earlier answer of this browser (the widget: a
    showing not yet answered), so the insert is tried first, as for an invitation not yet
    answered; an earlier answer after all only costs the retry.

    ``comment`` / ``extra_answers`` left as None keep what an earlier answer had (the score
    page records the score alone before the respondent writes anything); ``""`` clears the
    comment, a blank extra answer clears that one. Identity: the invitation's contact, else
    ``contact`` (a web link's signed email); never stored for an anonymous survey. The
    contact's and the invitation's properties are snapshotted at the first answer only, so
    later edits of the contact do not move old answers between segments. ``properties``
    (an answer without an invitation: the widget's page properties and URL) are stored as
    the answer's own properties at the first answer, where an invitation's would be.

    Race-safe: a concurrent submit of the same invitation (or browser) loses on the unique
    constraint, its attempt is rolled back, and it then updates the winner's row (committed
    by then), so two simultaneous submits leave one row. ``response_saved`` is sent after
    commit.
    """
    answer = _clean_answer(
        invitation=invitation,
        survey=survey,
        score=score,
        comment=comment,
        extra_answers=extra_answers,
        channel=channel,
        language=language,
        contact=contact,
        browser_key=browser_key,
        properties=properties,
    )
    # An invitation not yet answered has no response: go straight to the insert (the common
    # case). Losing the race to a concurrent submit rolls that attempt back; the winner's row
    # is committed by then and is updated instead.
    first_time = (invitation is not None and invitation.answered_at is None) or (
        invitation is None and first_answer and browser_key is not None
    )
    try:
        return _record(answer, insert_first=first_time)
    except IntegrityError:
        return _record(answer, insert_first=False)


def _record(answer: _Answer, *, insert_first: bool) -> Response:
    """One attempt of ``response_record`` in its own transaction (a savepoint when called
    inside another). A unique conflict on the insert propagates: the caller tries again."""
    invitation, survey = answer.invitation, answer.survey
    with transaction.atomic():
        response = None if insert_first else _locked_existing(answer)
        previous_score = response.score if response is not None else None
        if response is None:
            response = _new(answer)
            response.save(force_insert=True)
        else:
            _update(response, answer)
        if invitation is not None:
            invitation_mark_answered(invitation=invitation)
        created = previous_score is None
        saved = response
        transaction.on_commit(
            lambda: response_saved.send(
                sender=Response,
                company_id=survey.company_id,
                response_id=saved.pk,
                created=created,
                previous_score=previous_score,
            )
        )
    return response


def response_delete(*, company: Company, response: Response) -> None:
    """Delete an answer (and what hangs off it).

    Dashboards need no call here: database triggers installed by the dashboards app turn
    every insert, change and delete of a response, cascades included, into rollup deltas.
    """
    if response.company_id != company.pk:
        raise ValueError("response belongs to another company")
    Response.objects.for_company(company).filter(pk=response.pk).delete()


# --- Web links identified by the company's systems ---------------------------------------------


def link_secret(*, company: Company) -> str:
    """The company's secret for signing web-link identities (hex; derived, never stored).

    Derived from ``SECRET_KEY`` and the company, so it changes if ``SECRET_KEY`` is rotated.
    Shown to the company's admins; their systems sign with it (see ``link_signature``).
    """
    return salted_hmac(
        "nps_saas/web-link-secret/v1", str(company.pk), algorithm="sha256"
    ).hexdigest()


def link_signature(*, company: Company, email: str) -> str:
    """``sig`` for ``/l/<survey id>/?email=<email>&sig=<sig>``.

    A company computes it as ``HMAC-SHA256(key=link secret as UTF-8 text, message=email
    trimmed and lower-cased)``, hex-encoded. For example in Python:
    ``hmac.new(secret.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()``.
    """
    return hmac.new(
        link_secret(company=company).encode(),
        email.strip().lower().encode(),
        hashlib.sha256,
    ).hexdigest()


def link_signature_valid(*, company: Company, email: str, signature: str) -> bool:
    return hmac.compare_digest(link_signature(company=company, email=email), signature.lower())


def browser_key_for(cookie_value: str) -> str:
    """What is stored for a browser: the SHA-256 of its random cookie, never the cookie."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def responses_delete_for_contact(*, company: Company, contact: Contact) -> int:
    """Delete every answer of ``contact`` (a person's data erased: their follow-ups, notes and
    tags go with them; the dashboards' triggers take the answers out of the rollups)."""
    if contact.company_id != company.pk:
        raise ValueError("contact belongs to another company")
    deleted, _by_model = Response.objects.for_company(company).filter(contact=contact).delete()
    return deleted
