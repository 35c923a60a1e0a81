"""Surveys, contacts and invitations made straight with the models (no sending involved)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from companies.models import Company
from surveys.models import Contact, Invitation, InvitationStatus, Survey, SurveyStatus
from surveys.tokens import new_nonce, token_for, token_hash

EXTRA_QUESTIONS = [
    {
        "id": "visit",
        "kind": "choice",
        "text": {"en": "How often do you visit?", "ru": "Как часто вы приходите?"},
        "choices": [{"en": "Weekly", "ru": "Каждую неделю"}, {"en": "Rarely", "ru": "Редко"}],
    },
    {"id": "dish", "kind": "text", "text": {"en": "Your favourite dish?"}},
]


def make_survey(company: Company, **fields: Any) -> Survey:
    values: dict[str, Any] = {"name": "Customers", "status": SurveyStatus.ACTIVE}
    values.update(fields)
    return Survey.objects.create(company=company, **values)


def make_contact(company: Company, email: str = "ann@customer.test", **fields: Any) -> Contact:
    return Contact.objects.create(
        company=company, email=email, name=fields.pop("name", "Ann Customer"), **fields
    )


def make_invitation(survey: Survey, contact: Contact, **fields: Any) -> tuple[Invitation, str]:
    """An invitation already sent, and its answer-link token."""
    nonce = new_nonce()
    token = token_for(nonce)
    values: dict[str, Any] = {
        "status": InvitationStatus.SENT,
        "sent_at": timezone.now(),
        "expires_at": timezone.now() + timedelta(days=30),
    }
    values.update(fields)
    invitation = Invitation.objects.create(
        company=survey.company,
        survey=survey,
        contact=contact,
        token_nonce=nonce,
        token_hash=token_hash(token),
        **values,
    )
    return invitation, token


@pytest.fixture
def survey(company: Company) -> Survey:
    return make_survey(company, extra_questions=EXTRA_QUESTIONS)


@pytest.fixture
def contact(company: Company) -> Contact:
    return make_contact(company, properties={"plan": "gold"})


@pytest.fixture
def invitation_token(survey: Survey, contact: Contact) -> tuple[Invitation, str]:
    return make_invitation(survey, contact, properties={"order": "A-17"})
