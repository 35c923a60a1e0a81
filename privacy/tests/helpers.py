"""One person's data in every place the product keeps it, for the export and erasure tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.utils import timezone

from companies.models import Company
from delighted_compat.models import (
    DelightedImport,
    DelightedImportStatus,
    DelightedResponse,
    ExportKind,
)
from notifications.models import (
    Channel,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    OutboxMessage,
    Suppression,
    SuppressionReason,
)
from notifications.webhooks_models import (
    MessageKind,
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from responses.models import Followup, FollowupEvent, FollowupEventKind, Response
from responses.services import response_record
from surveys.models import (
    AutopilotMember,
    AutopilotProgram,
    Contact,
    ContactImport,
    ImportStatus,
    Invitation,
    InvitationEvent,
    InvitationStatus,
    Survey,
    SurveyStatus,
)
from surveys.tokens import new_nonce, token_for, token_hash
from widget.models import WidgetView

EMAIL = "ana.person@example.com"
PHONE = "+77011234567"
EXTERNAL_ID = "crm-ana-42"
COMMENT = "Ana here: the courier was rude"
NOTE = "Called Ana back, she wants a refund"
CUSTOMER_REPLY = "Thanks, refund received"
# Strings that name the person: none may be left anywhere after erasure.
SECRETS = (EMAIL, PHONE, EXTERNAL_ID, COMMENT, NOTE, CUSTOMER_REPLY, "Ana Person", "gold-ana")


@dataclass
class World:
    survey: Survey
    contact: Contact
    response: Response
    other_response: Response
    contact_import: ContactImport
    delighted_import: DelightedImport


def _invitation(company: Company, survey: Survey, contact: Contact, **extra: Any) -> Invitation:
    nonce = new_nonce()
    return Invitation.objects.create(
        company=company,
        survey=survey,
        contact=contact,
        token_nonce=nonce,
        token_hash=token_hash(token_for(nonce)),
        **extra,
    )


def person_everywhere(company: Company) -> World:
    survey = Survey.objects.create(company=company, name="Delivery NPS", status=SurveyStatus.ACTIVE)
    contact = Contact.objects.create(
        company=company,
        email=EMAIL,
        phone=PHONE,
        external_id=EXTERNAL_ID,
        name="Ana Person",
        properties={"plan": "gold-ana"},
    )
    delivery = Delivery.objects.create(
        company=company,
        channel=Channel.EMAIL,
        to=EMAIL,
        subject="How likely are you to recommend us?",
        status=DeliveryStatus.DELIVERED,
        provider="ses",
        provider_message_id="ses-" + secrets.token_hex(4),
    )
    DeliveryEvent.objects.create(company=company, delivery=delivery, event="delivered")
    Delivery.objects.create(
        company=company, channel=Channel.SMS, to=PHONE, status=DeliveryStatus.QUEUED
    )
    invitation = _invitation(
        company,
        survey,
        contact,
        status=InvitationStatus.SENT,
        sent_at=timezone.now(),
        delivery=delivery,
        properties={"order": "A-1", "who": "gold-ana"},
    )
    InvitationEvent.objects.create(company=company, invitation=invitation, event="sent")
    response = response_record(
        invitation=invitation,
        survey=survey,
        score=2,
        comment=COMMENT,
        channel="email",
        language="en",
        contact=contact,
    )
    # The default alert rule may have opened it already (tasks run inline on commit).
    followup = Followup.objects.for_company(company).filter(response=response).first()
    if followup is None:
        followup = Followup.objects.create(
            company=company,
            response=response,
            survey=survey,
            score=2,
            seen_comment=COMMENT,
            due_at=timezone.now() + timedelta(hours=48),
        )
    FollowupEvent.objects.create(
        company=company, followup=followup, kind=FollowupEventKind.NOTE, body=NOTE
    )
    FollowupEvent.objects.create(
        company=company,
        followup=followup,
        kind=FollowupEventKind.CUSTOMER_REPLY,
        body=CUSTOMER_REPLY,
    )
    DelightedResponse.objects.create(
        company=company,
        response=response,
        delighted_id="d-1",
        person_id=EXTERNAL_ID,
        notes=[NOTE],
        permalink="https://delighted.test/r/1",
    )
    # The team's alert email about the answer names the respondent in its subject.
    Delivery.objects.create(
        company=company,
        channel=Channel.EMAIL,
        to="agent@acme.test",
        subject="Detractor: Ana Person gave 2",
        status=DeliveryStatus.SENT,
        metadata={"alert": "1", "response": response.public_id},
    )
    # Someone else: their answer and data stay as they are.
    bob = Contact.objects.create(company=company, email="bob@example.com")
    other_response = response_record(
        invitation=_invitation(company, survey, bob, status=InvitationStatus.SENT),
        survey=survey,
        score=10,
        comment="Bob loves it",
        channel="email",
        language="en",
        contact=bob,
    )
    endpoint = WebhookEndpoint.objects.create(
        company=company,
        url="https://hooks.example.test/nps",
        event_types=["response.created"],
        secret_encrypted="x",
    )
    message = WebhookMessage.objects.create(
        company=company,
        kind=MessageKind.WEBHOOK,
        endpoint=endpoint,
        event_type="response.created",
        payload={"data": {"id": response.public_id, "contact": {"email": EMAIL}}},
        status=MessageStatus.DELIVERED,
    )
    WebhookAttempt.objects.create(
        company=company, message=message, number=1, status_code=200, response_excerpt="ok"
    )
    WebhookMessage.objects.create(
        company=company,
        kind=MessageKind.WEBHOOK,
        endpoint=endpoint,
        event_type="response.created",
        payload={"data": {"id": other_response.public_id, "comment": "Bob loves it"}},
        status=MessageStatus.DELIVERED,
    )
    Suppression.objects.create(
        company=company,
        channel=Channel.EMAIL,
        address=EMAIL,
        reason=SuppressionReason.UNSUBSCRIBED,
        detail=f"unsubscribed from {EMAIL}",
    )
    program = AutopilotProgram.objects.create(company=company, survey=survey, channel="email")
    AutopilotMember.objects.create(
        company=company, program=program, contact=contact, properties={"tier": "gold-ana"}
    )
    WidgetView.objects.create(
        company=company,
        survey=survey,
        ticket_hash=secrets.token_hex(32),
        contact=contact,
        page_url="https://shop.test/account?user=crm-ana-42",
    )
    OutboxMessage.objects.create(channel="email", to=[EMAIL], subject="Survey", text=COMMENT)
    contact_import = ContactImport(
        company=company,
        file_name="people.csv",
        status=ImportStatus.DONE,
        samples={"email": [EMAIL, "bob@example.com"]},
        errors=[{"line": 3, "column": "phone", "reason": f"bad phone for {EMAIL}"}],
    )
    contact_import.file.save(
        "people.csv",
        ContentFile(
            f"email,name,plan\n{EMAIL},Ana Person,gold-ana\nbob@example.com,Bob,silver\n".encode()
        ),
        save=False,
    )
    contact_import.error_report.save(
        "errors.csv",
        ContentFile(f"\ufeffphone,name,error\n'{PHONE},Ana Person,bad\n'+1,Zed,bad\n".encode()),
        save=False,
    )
    contact_import.save()
    delighted_import = DelightedImport(
        company=company,
        batch="b1",
        kind=ExportKind.UNSUBSCRIBES,
        file_name="unsubscribes.csv",
        status=DelightedImportStatus.DONE,
    )
    delighted_import.file.save(
        "u.csv",
        ContentFile(f"Email,Unsubscribed At\n{EMAIL.upper()},2025-01-01\nzed@x.test,x\n".encode()),
        save=False,
    )
    delighted_import.save()
    return World(
        survey=survey,
        contact=contact,
        response=response,
        other_response=other_response,
        contact_import=contact_import,
        delighted_import=delighted_import,
    )


def leftovers(company: Company) -> list[str]:
    """Every row of the company (and the outbox) that still holds one of SECRETS, as
    "app.Model: value" (the whole row's values, case-insensitive), and every stored file."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        if model.__module__.split(".")[0] not in {
            "companies",
            "notifications",
            "surveys",
            "responses",
            "dashboards",
            "delighted_compat",
            "widget",
            "privacy",
        }:
            continue
        fields = {f.name for f in model._meta.concrete_fields}
        if "company" in fields:
            rows = model._default_manager.filter(company=company)
        elif model is OutboxMessage:
            rows = model._default_manager.all()
        else:
            continue
        for values in rows.values():
            text = repr(values).casefold()
            for secret in SECRETS:
                if secret.casefold() in text:
                    found.append(f"{model._meta.label}: {secret}")
    return found + _file_leftovers(company)


def _file_leftovers(company: Company) -> list[str]:
    found = []
    owners: list[ContactImport | DelightedImport] = [
        *ContactImport.objects.for_company(company),
        *DelightedImport.objects.for_company(company),
    ]
    for imp in owners:
        for field_file in (imp.file, imp.error_report):
            if field_file:
                with field_file.open("rb") as f:
                    content = f.read().decode("utf-8", "replace").casefold()
                for secret in SECRETS:
                    if secret.casefold() in content:
                        found.append(f"file {field_file.name}: {secret}")
    return found
