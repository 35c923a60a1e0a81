"""Reads for data subject rights: who a request is about, and everything we hold on them.

A person is named by one identifier (email, phone, external id, or for Delighted's API our
contact id). They may be several contacts (contacts can share a phone number) and addresses
with no contact left (a suppression, the ledger rows of an earlier send): ``Person`` carries
all of it, and export and erasure work from the same ``Person``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company
from notifications.models import Channel, Delivery, DeliveryEvent, Suppression
from notifications.services import normalize_address, suppression_address_hash
from privacy.models import IdentifierKind, PersonalDataRequest
from responses.models import Followup, FollowupEvent, Response
from surveys.models import AutopilotMember, Contact, Invitation, InvitationEvent
from surveys.services.contacts import contact_phone_region, normalize_email, normalize_phone
from widget.models import WidgetView

PHONE_CHANNELS = (Channel.SMS, Channel.WHATSAPP)


@dataclass
class Person:
    """The contacts and addresses one identifier names in one company."""

    identifier_kind: str
    contacts: list[Contact]
    # (channel, normalised address): the identifier's own and every found contact's.
    addresses: set[tuple[str, str]] = field(default_factory=set)

    @property
    def external_ids(self) -> list[str]:
        return sorted({c.external_id for c in self.contacts if c.external_id})


def _add_contact_addresses(person: Person) -> None:
    for contact in person.contacts:
        if contact.email:
            person.addresses.add((Channel.EMAIL, normalize_address(Channel.EMAIL, contact.email)))
        if contact.phone:
            for channel in PHONE_CHANNELS:
                person.addresses.add((channel, normalize_address(channel, contact.phone)))


def person_identify(*, company: Company, kind: str, value: str) -> Person:
    """The person ``value`` names; ``ValidationError`` (keyed by ``kind``) for a value that
    cannot be one (an invalid address, an empty id)."""
    value = (value or "").strip()
    if kind not in IdentifierKind.values:
        raise ValidationError({"kind": [_("Choose email, phone or external id.")]})
    if not value:
        raise ValidationError({kind: [_("This field is required.")]})
    contacts = Contact.objects.for_company(company)
    person = Person(identifier_kind=kind, contacts=[])
    try:
        if kind == IdentifierKind.EMAIL:
            email = normalize_email(value)
            person.contacts = list(contacts.filter(email=email))
            person.addresses.add((Channel.EMAIL, email))
        elif kind == IdentifierKind.PHONE:
            phone = normalize_phone(value, region=contact_phone_region(company=company))
            person.contacts = list(contacts.filter(phone=phone).order_by("pk"))
            person.addresses.update((channel, phone) for channel in PHONE_CHANNELS)
        elif kind == IdentifierKind.EXTERNAL_ID:
            person.contacts = list(contacts.filter(external_id=value))
        else:
            person.contacts = list(contacts.filter(public_id=value))
    except ValidationError as exc:
        raise ValidationError({kind: exc.messages}) from exc
    _add_contact_addresses(person)
    return person


def person_of_contact(*, company: Company, contact: Contact) -> Person:
    """The person behind one contact (Delighted's ``DELETE /v1/people/{id}``)."""
    if contact.company_id != company.pk:
        raise ValueError("contact belongs to another company")
    person = Person(identifier_kind=IdentifierKind.PERSON_ID, contacts=[contact])
    _add_contact_addresses(person)
    return person


# --- Where the person's rows are (shared by export and erasure) --------------------------------


def responses_of(*, company: Company, person: Person) -> QuerySet[Response]:
    """Their answers: by contact, or through an invitation to them."""
    if not person.contacts:
        return Response.objects.for_company(company).none()
    return Response.objects.for_company(company).filter(
        Q(contact__in=person.contacts) | Q(invitation__contact__in=person.contacts)
    )


def invitations_of(*, company: Company, person: Person) -> QuerySet[Invitation]:
    return Invitation.objects.for_company(company).filter(contact__in=person.contacts)


def deliveries_of(*, company: Company, person: Person) -> QuerySet[Delivery]:
    """The ledger rows to their addresses, and those of their invitations."""
    query = Q(pk__in=invitations_of(company=company, person=person).values("delivery_id"))
    for channel, address in person.addresses:
        query |= Q(channel=channel, to=address)
    return Delivery.objects.for_company(company).filter(query)


def deliveries_about(*, company: Company, person: Person) -> QuerySet[Delivery]:
    """The ledger rows of the team's emails about their answers (alerts, follow-up news):
    their subjects may name the person. Not part of the export (they are the team's mail)."""
    responses = responses_of(company=company, person=person)
    response_ids = list(responses.values_list("public_id", flat=True))
    followup_ids = list(
        Followup.objects.for_company(company)
        .filter(response__in=responses)
        .values_list("public_id", flat=True)
    )
    if not response_ids:
        return Delivery.objects.for_company(company).none()
    return Delivery.objects.for_company(company).filter(
        Q(metadata__response__in=response_ids) | Q(metadata__followup__in=followup_ids)
    )


def suppression_keys(*, company: Company, person: Person) -> list[tuple[str, str]]:
    """(channel, stored address) of their suppressions: plain or already hashed."""
    keys = []
    for channel, address in sorted(person.addresses):
        keys.append((channel, address))
        keys.append(
            (
                channel,
                suppression_address_hash(
                    company_id=company.pk, channel=channel, normalized=address
                ),
            )
        )
    return keys


def suppressions_of(*, company: Company, person: Person) -> QuerySet[Suppression]:
    query = Q(pk__in=[])
    for channel, address in suppression_keys(company=company, person=person):
        query |= Q(channel=channel, address=address)
    return Suppression.objects.for_company(company).filter(query)


def person_found(*, company: Company, person: Person) -> bool:
    """Whether the company holds anything about them (a contact, a ledger row, a
    suppression): an address alone, never used, is nobody."""
    return bool(
        person.contacts
        or deliveries_of(company=company, person=person).exists()
        or suppressions_of(company=company, person=person).exists()
    )


# --- The export (art. 15 and 20) ---------------------------------------------------------------


def _t(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.public_id,
        "email": contact.email,
        "phone": contact.phone,
        "name": contact.name,
        "language": contact.language or None,
        "time_zone": contact.time_zone or None,
        "external_id": contact.external_id,
        "properties": contact.properties,
        "created_at": _t(contact.created_at),
        "updated_at": _t(contact.updated_at),
    }


def _invitations_json(invitations: Iterable[Invitation]) -> list[dict[str, Any]]:
    return [
        {
            "id": inv.public_id,
            "contact": inv.contact.public_id,
            "survey": inv.survey.name,
            "channel": inv.channel,
            "language": inv.language,
            "status": inv.status,
            "properties": inv.properties,
            "scheduled_for": _t(inv.scheduled_for),
            "sent_at": _t(inv.sent_at),
            "delivered_at": _t(inv.delivered_at),
            "opened_at": _t(inv.opened_at),
            "clicked_at": _t(inv.clicked_at),
            "answered_at": _t(inv.answered_at),
            "reminder_sent_at": _t(inv.reminder_sent_at),
            "expires_at": _t(inv.expires_at),
            "created_at": _t(inv.created_at),
            "events": [
                {"event": e.event, "detail": e.detail, "occurred_at": _t(e.occurred_at)}
                for e in inv.events.all()
            ],
        }
        for inv in invitations
    ]


def _followups_json(followups: Iterable[Followup]) -> list[dict[str, Any]]:
    # The thread as the team wrote it; who on the team wrote it is the team's data, not theirs.
    return [
        {
            "id": f.public_id,
            "status": f.status,
            "resolution": f.resolution or None,
            "created_at": _t(f.created_at),
            "resolved_at": _t(f.resolved_at),
            "thread": [
                {"kind": e.kind, "body": e.body, "created_at": _t(e.created_at)}
                for e in f.events.all()
            ],
        }
        for f in followups
    ]


def _responses_json(responses: Iterable[Response]) -> list[dict[str, Any]]:
    out = []
    for r in responses:
        item: dict[str, Any] = {
            "id": r.public_id,
            "survey": r.survey.name,
            "score": r.score,
            "category": r.category,
            "comment": r.comment,
            "extra_answers": r.extra_answers,
            "channel": r.channel,
            "language": r.language,
            "contact_properties": r.contact_properties,
            "invitation_properties": r.invitation_properties,
            "created_at": _t(r.created_at),
            "updated_at": _t(r.updated_at),
            "followups": _followups_json(r.followups.all()),
        }
        delighted = getattr(r, "delighted", None)
        if delighted is not None:
            item["delighted"] = {
                "id": delighted.delighted_id,
                "person_id": delighted.person_id,
                "tags": delighted.tags,
                "notes": delighted.notes,
            }
        out.append(item)
    return out


def person_export(*, company: Company, person: Person) -> dict[str, Any]:
    """Everything the company holds about the person, as JSON-ready data (art. 15 and 20)."""
    contacts = person.contacts
    # The prefetches name the company (by their foreign key alone, they would read every
    # shard of a cluster distributed by company_id: docs/scaling.md).
    invitations = (
        invitations_of(company=company, person=person)
        .select_related("survey", "contact")
        .prefetch_related(Prefetch("events", InvitationEvent.objects.for_company(company)))
        .order_by("created_at", "pk")
    )
    responses = (
        responses_of(company=company, person=person)
        .select_related("survey", "delighted")
        .prefetch_related(Prefetch("followups", Followup.objects.for_company(company)))
        .prefetch_related(Prefetch("followups__events", FollowupEvent.objects.for_company(company)))
        .order_by("created_at", "pk")
    )
    deliveries = (
        deliveries_of(company=company, person=person)
        .prefetch_related(Prefetch("events", DeliveryEvent.objects.for_company(company)))
        .order_by("created_at", "pk")
    )
    members = (
        AutopilotMember.objects.for_company(company)
        .filter(contact__in=contacts)
        .select_related("program__survey", "contact")
        .order_by("created_at", "pk")
    )
    views = (
        WidgetView.objects.for_company(company)
        .filter(contact__in=contacts)
        .select_related("survey", "contact")
        .order_by("shown_at", "pk")
    )
    return {
        "generated_at": _t(timezone.now()),
        "company": company.name,
        "contacts": [_contact_json(c) for c in contacts],
        "invitations": _invitations_json(invitations),
        "responses": _responses_json(responses),
        "deliveries": [
            {
                "id": d.public_id,
                "channel": d.channel,
                "to": d.to,
                "subject": d.subject,
                "status": d.status,
                "provider": d.provider,
                "created_at": _t(d.created_at),
                "sent_at": _t(d.sent_at),
                "events": [
                    {"event": e.event, "detail": e.detail, "occurred_at": _t(e.occurred_at)}
                    for e in d.events.all()
                ],
            }
            for d in deliveries
        ],
        "suppressions": [
            {
                "channel": s.channel,
                # A hashed one (the person erased before) is theirs only by the hash.
                "address": s.address,
                "reason": s.reason,
                "created_at": _t(s.created_at),
            }
            for s in suppressions_of(company=company, person=person).order_by("created_at", "pk")
        ],
        "recurring_surveys": [
            {
                "contact": m.contact.public_id,
                "survey": m.program.survey.name,
                "channel": m.program.channel,
                "properties": m.properties,
                "created_at": _t(m.created_at),
                "last_asked_at": _t(m.last_asked_at),
                "next_ask_at": _t(m.next_ask_at),
            }
            for m in members
        ],
        "widget_views": [
            {
                "contact": v.contact.public_id if v.contact else None,
                "survey": v.survey.name,
                "page_url": v.page_url,
                "language": v.language,
                "properties": v.properties,
                "shown_at": _t(v.shown_at),
                "dismissed_at": _t(v.dismissed_at),
                "answered_at": _t(v.answered_at),
            }
            for v in views
        ],
    }


def requests_recent(*, company: Company, limit: int = 50) -> QuerySet[PersonalDataRequest]:
    """The latest exports and erasures, newest first, with who did them."""
    return (
        PersonalDataRequest.objects.for_company(company)
        .select_related("actor_user", "actor_api_key")
        .order_by("-created_at", "-pk")[:limit]
    )
