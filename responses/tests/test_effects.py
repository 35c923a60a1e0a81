"""What an answer owes (its webhook event, its alerts, the detractor's follow-up) is on its
row: a broker that is down costs the answer nothing (it still answers 2xx), and the drain
pays what is owed, once, also after a worker died holding it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from companies.models import Company, Role, User
from conftest import add_member
from notifications.tests.webhooks_fake import LoopbackReceiver
from notifications.webhooks import webhook_endpoint_create
from notifications.webhooks_models import WebhookEndpoint, WebhookMessage
from responses.effects import DRAIN_LEASE, effects_drain, response_effects_run
from responses.models import OWED_CREATED, OWED_UPDATED, AlertFiring, Followup, Response
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey
from tests.broker import publishing_to
from tests.private_services import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)
NOWHERE = "redis://127.0.0.1:9/0"  # nothing listens there: every wake-up is lost


@pytest.fixture
def agent(company: Company) -> User:
    return add_member(company, "agent@acme.test", Role.AGENT)


@pytest.fixture
def webhook_endpoint(company: Company, settings) -> Iterator[WebhookEndpoint]:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    with LoopbackReceiver() as receiver:
        yield webhook_endpoint_create(
            company=company, url=receiver.url, event_types=["response.created"]
        ).endpoint


def _post_score(token: str, score: int) -> int:
    client = Client()
    url = reverse("answer-score", kwargs={"token": token, "score": score})
    return client.post(url, {"score": str(score), "auto": "1"}).status_code


def test_an_answer_saved_while_the_broker_is_down_answers_200_and_its_follow_up_comes_later(
    company, agent, settings
):
    settings.ALERT_COMMENT_WAIT_SECONDS = 0  # a score alone: its alert email at once
    survey = make_survey(company)
    contact = make_contact(company)
    _invitation, token = make_invitation(survey, contact)
    with PrivateRedis() as redis, publishing_to(redis.url):
        redis.stop()
        assert _post_score(token, 2) == 200
    response = Response.objects.for_company(company).get()
    assert (response.score, response.owed_event) == (2, OWED_CREATED)
    assert response.owed_at is not None
    assert not Followup.objects.for_company(company).exists()  # no worker has run yet
    # The drain (beat, every second, once workers and Redis are back) pays it, once.
    with publishing_to(NOWHERE):
        assert effects_drain().answers == 1
        assert effects_drain().answers == 0
    followup = Followup.objects.for_company(company).get()
    assert followup.response_id == response.pk
    assert AlertFiring.objects.for_company(company).get().email_status == "sent"
    response.refresh_from_db()
    assert (response.owed_event, response.owed_at) == ("", None)


def test_an_answer_a_dead_worker_held_is_due_again_after_its_lease(company, agent):
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    with publishing_to(NOWHERE):
        response_record(
            invitation=invitation, survey=survey, score=1, channel="email", language="en"
        )
        # A drain claims it and its worker dies before paying (the claim is its lease).
        claimed_at = timezone.now()
        Response.objects.for_company(company).update(owed_at=claimed_at + DRAIN_LEASE)
        assert effects_drain().answers == 0
        assert not Followup.objects.for_company(company).exists()
        later = claimed_at + DRAIN_LEASE + timedelta(seconds=1)
        assert effects_drain(now=later).answers == 1
    assert Followup.objects.for_company(company).count() == 1


def test_a_repeated_wake_up_pays_nothing_twice(company, agent, webhook_endpoint):
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    with publishing_to(NOWHERE):
        response = response_record(
            invitation=invitation, survey=survey, score=3, channel="email", language="en"
        )
        for _ in range(3):  # the first run pays; redelivered messages find nothing owed
            response_effects_run(company=company, response_id=response.pk)
    assert Followup.objects.for_company(company).count() == 1
    assert AlertFiring.objects.for_company(company).count() == 1
    events = WebhookMessage.objects.for_company(company).values_list("event_type", flat=True)
    assert list(events) == ["response.created"]


def test_an_edit_before_the_effects_ran_still_owes_the_created_event(company, agent):
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    with publishing_to(NOWHERE):
        first = response_record(
            invitation=invitation, survey=survey, score=8, channel="email", language="en"
        )
        response_record(
            invitation=invitation,
            survey=survey,
            score=4,
            comment="late",
            channel="email",
            language="en",
        )
    first.refresh_from_db()
    assert first.owed_event == OWED_CREATED
    response_effects_run(company=company, response_id=first.pk)
    with publishing_to(NOWHERE):
        response_record(
            invitation=invitation, survey=survey, score=5, channel="email", language="en"
        )
    first.refresh_from_db()
    assert first.owed_event == OWED_UPDATED
