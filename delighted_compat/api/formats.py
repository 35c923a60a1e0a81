"""Delighted's JSON shapes of our objects: ids as strings, Unix seconds, explicit nulls."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from delighted_compat.api.base import unix
from notifications.models import Suppression
from responses.models import Response
from surveys.models import AutopilotMember, AutopilotProgram, Contact, Invitation, SurveyStatus
from surveys.selectors import survey_extra_questions


def person_json(contact: Contact) -> dict[str, Any]:
    """A person; the dates come from ``selectors.with_person_dates`` when annotated."""
    return {
        "id": contact.public_id,
        "email": contact.email,
        "name": contact.name or None,
        "phone_number": contact.phone,
        "created_at": unix(contact.created_at),
        "last_sent_at": unix(getattr(contact, "last_sent_at", None)),
        "last_responded_at": unix(getattr(contact, "last_responded_at", None)),
        "next_survey_scheduled_at": unix(getattr(contact, "next_survey_scheduled_at", None)),
        "properties": dict(contact.properties or {}),
    }


def person_created_json(contact: Contact, invitation: Invitation | None) -> dict[str, Any]:
    """``POST /v1/people``'s answer: the person and when their survey goes out (or null)."""
    body = person_json(contact)
    body["survey_scheduled_at"] = unix(invitation.scheduled_for) if invitation else None
    return body


def permalink(response: Response, *, slug: str) -> str:
    """Where a teammate sees the answer: the person's page, else the responses list."""
    if response.contact is not None and not response.survey.anonymous:
        path = reverse("contacts:detail", args=[slug, response.contact.public_id])
    else:
        path = reverse("responses:list", args=[slug])
    return settings.SITE_URL.rstrip("/") + path


def response_json(
    response: Response,
    *,
    slug: str,
    person: dict[str, Any] | None = None,
    expand_person: bool = False,
) -> dict[str, Any]:
    """A survey response; ``person`` is the id, or the person object when expanded."""
    contact = None if response.survey.anonymous else response.contact
    person_value: Any = contact.public_id if contact is not None else None
    if expand_person and contact is not None:
        person_value = person if person is not None else person_json(contact)
    return {
        "id": response.public_id,
        "person": person_value,
        "survey_type": response.survey.kind,
        "score": response.score,
        "comment": response.comment or None,
        "permalink": permalink(response, slug=slug),
        "created_at": unix(response.created_at),
        "updated_at": unix(response.updated_at),
        # An anonymous survey's (eNPS) properties could name the respondent: never shown.
        "person_properties": (
            None if response.survey.anonymous else dict(response.invitation_properties) or None
        ),
        "notes": [],
        "tags": [],
        "additional_answers": additional_answers(response),
    }


def additional_answers(response: Response) -> list[dict[str, Any]]:
    """Answers to the survey's extra questions, in Delighted's shape: a choice question is
    ``select_one`` (the choice's id is its position), a text question ``free_response``;
    worded in the respondent's language."""
    answers = response.extra_answers or {}
    if not answers:
        return []
    out: list[dict[str, Any]] = []
    questions = survey_extra_questions(survey=response.survey, language=response.language)
    for question in questions:
        if question["id"] not in answers:
            continue
        value: dict[str, Any] = {
            "free_response": None,
            "scale": None,
            "select_one": None,
            "select_many": None,
        }
        answer = answers[question["id"]]
        if question["kind"] == "choice":
            choices = question["choices"]
            text = choices[answer] if isinstance(answer, int) and 0 <= answer < len(choices) else ""
            value["select_one"] = {"id": str(answer), "text": text}
            kind = "select_one"
        else:
            value["free_response"] = str(answer)
            kind = "free_response"
        out.append(
            {
                "id": f"{response.public_id}-{question['id']}",
                "value": value,
                "question": {"id": question["id"], "type": kind, "text": question["text"]},
            }
        )
    return out


def suppression_json(
    suppression: Suppression, contact: Contact | None, *, time_field: str
) -> dict[str, Any]:
    return {
        "person_id": contact.public_id if contact else None,
        "email": suppression.address,
        "name": (contact.name or None) if contact else None,
        time_field: unix(suppression.created_at),
    }


def metrics_json(counts: list[int]) -> dict[str, Any]:
    """Delighted's metrics: counts and whole-number percentages (0–100); ``nps`` is null
    without answers. Integers as Delighted gave them, so typed clients keep decoding."""
    n = sum(counts)
    promoters, passives, detractors = sum(counts[9:]), sum(counts[7:9]), sum(counts[:7])

    def percent(count: int) -> int:
        return round(100 * count / n) if n else 0

    return {
        "nps": round(100 * (promoters - detractors) / n) if n else None,
        "promoter_count": promoters,
        "promoter_percent": percent(promoters),
        "passive_count": passives,
        "passive_percent": percent(passives),
        "detractor_count": detractors,
        "detractor_percent": percent(detractors),
        "response_count": n,
    }


# --- Autopilot (recurring surveys) -------------------------------------------------------------

SECONDS_PER_DAY = 86400


def autopilot_config_json(channel: str, program: AutopilotProgram | None) -> dict[str, Any]:
    """A platform's Autopilot configuration; never set up: off, with nulls. ``active`` says
    whether members are asked: the programme is on and its survey is active."""
    if program is None:
        return {
            "platform_id": channel,
            "active": False,
            "frequency": None,
            "created_at": None,
            "updated_at": None,
        }
    return {
        "platform_id": channel,
        "active": program.active and program.survey.status == SurveyStatus.ACTIVE,
        "frequency": program.cadence_days * SECONDS_PER_DAY,
        "created_at": unix(program.created_at),
        "updated_at": unix(program.updated_at),
    }


def autopilot_person_json(contact: Contact, *, last_sent: bool = False) -> dict[str, Any]:
    """The person of a membership, as Delighted showed it there (``last_sent_at`` in lists,
    from ``selectors.with_person_dates``)."""
    body: dict[str, Any] = {
        "id": contact.public_id,
        "name": contact.name or None,
        "email": contact.email,
        "created_at": unix(contact.created_at),
        "phone_number": contact.phone,
    }
    if last_sent:
        body["last_sent_at"] = unix(getattr(contact, "last_sent_at", None))
    return body


def autopilot_membership_json(member: AutopilotMember, contact: Contact) -> dict[str, Any]:
    """A membership in a list: when it began and changed, the person, and the next ask
    (null once the member is no longer asked: its address was suppressed)."""
    next_request = None
    if member.next_ask_at is not None:
        next_request = {
            "id": member.public_id,
            "created_at": unix(member.last_asked_at or member.created_at),
            "survey_scheduled_at": unix(member.next_ask_at),
            "properties": dict(member.properties or {}),
        }
    return {
        "created_at": unix(member.created_at),
        "updated_at": unix(member.updated_at),
        "person": autopilot_person_json(contact, last_sent=True),
        "next_survey_request": next_request,
    }
