"""The bodies of Delighted-format webhooks (spec §7): ``event_data`` of a survey response is
exactly what ``GET /v1/survey_responses/{id}?expand[]=person`` answers, that of an unsubscribe
is a row of ``GET /v1/unsubscribes``.

The post office (notifications.webhooks) signs and delivers them; it calls ``delighted_event_data``
(registered in ``DelightedCompatConfig.ready``) when one of our events goes to an endpoint that
chose Delighted's format, in the transaction of the event's cause.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from companies.models import Company
from delighted_compat.api import formats, selectors
from delighted_compat.api.base import unix
from notifications.webhooks_models import WebhookEventType
from responses.models import Response


def survey_response_event_data(*, company: Company, public_id: str) -> dict[str, Any] | None:
    """The response as ``/v1/`` shows it with its person expanded; None if it is gone."""
    response = (
        Response.objects.for_company(company)
        .filter(public_id=public_id)
        .select_related("contact", "survey")
        .first()
    )
    if response is None:
        return None
    person = None
    contact = None if response.survey.anonymous else response.contact
    if contact is not None:
        found = selectors.contacts_with_dates(company=company, ids=[contact.pk])
        person = formats.person_json(found[contact.pk]) if contact.pk in found else None
    return formats.response_json(response, slug=company.slug, person=person, expand_person=True)


def unsubscribe_event_data(data: dict[str, Any]) -> dict[str, Any]:
    """An unsubscribe as ``/v1/unsubscribes`` lists it (Delighted never published this body)."""
    contact = data.get("contact") or {}
    return {
        "person_id": contact.get("id"),
        "email": contact.get("email") or None,
        "name": contact.get("name") or None,
        "unsubscribed_at": unix(timezone.now()),
    }


def delighted_event_data(
    company: Company, event_type: str, data: dict[str, Any]
) -> dict[str, Any] | None:
    if event_type in (WebhookEventType.RESPONSE_CREATED, WebhookEventType.RESPONSE_UPDATED):
        return survey_response_event_data(company=company, public_id=str(data["id"]))
    if event_type == WebhookEventType.CONTACT_UNSUBSCRIBED:
        return unsubscribe_event_data(data)
    return None
