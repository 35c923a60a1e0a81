"""Infrastructure that is down for a while makes sending slower, never lossy: the rate
limiter's Redis gone, the database failing under a send task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.db import OperationalError
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from companies.models import Company
from notifications.models import Delivery
from surveys import tasks
from surveys.models import Invitation, InvitationStatus
from surveys.services import send
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.dispatch import invitations_dispatch_due
from surveys.tests.sending_factories import active_survey, contacts, postmark
from tests.private_services import PrivateRedis


def _queued(company: Company, count: int) -> list[Invitation]:
    survey = active_survey(company)
    contacts(company, count)
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})
    campaign_expand(company=company, campaign_id=campaign.pk)
    assert invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1)) == count
    return list(Invitation.objects.for_company(company).order_by("pk"))


def test_the_rate_limiters_redis_down_defers_the_send_it_does_not_fail_it(
    company: Company, settings: Any
) -> None:
    (invitation,) = _queued(company, 1)
    with PrivateRedis() as redis:
        settings.REDIS_URL = redis.url
        redis.stop()
        with postmark() as fake:
            tasks.send_invitations.apply(args=(company.pk, [invitation.pk]))
        assert fake.calls == []
        invitation.refresh_from_db()
        assert (invitation.status, invitation.attempts) == (InvitationStatus.SCHEDULED, 1)
        assert invitation.scheduled_for > timezone.now()
        assert Delivery.objects.for_company(company).get().status == "queued"
        # Redis is back: the dispatcher sends it when due, once, reusing its ledger row.
        redis.start()
        later = invitation.scheduled_for + timedelta(seconds=1)
        with postmark() as fake:
            assert invitations_dispatch_due(now=later) == 1
            tasks.send_invitations.apply(args=(company.pk, [invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert fake.recipients == [invitation.contact.email]
    assert Delivery.objects.for_company(company).count() == 1


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    ],
)
def test_a_database_or_redis_error_under_the_send_task_is_retried_with_backoff(
    company: Company, error: Exception
) -> None:
    """Celery's own retry (INFRA_RETRY): the task asks the broker to run it again later;
    the rows stay as they were (queued), so the retry, or the stale sweep, sends them."""
    (invitation,) = _queued(company, 1)
    with (
        mock.patch.object(send, "invitations_send", side_effect=error),
        pytest.raises(Retry) as retry,
    ):
        tasks.send_invitations.apply(args=(company.pk, [invitation.pk]))
    assert retry.value.exc is error
    assert isinstance(retry.value.when, (int, float))
    assert 0 <= retry.value.when <= 5  # the first of 5 s … 2 min, with jitter
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.QUEUED


def test_a_deterministic_error_is_not_retried(company: Company) -> None:
    (invitation,) = _queued(company, 1)
    with (
        mock.patch.object(send, "invitations_send", side_effect=ValueError("a bug")) as broken,
        pytest.raises(ValueError, match="a bug"),
    ):
        tasks.send_invitations.apply(args=(company.pk, [invitation.pk]))
    assert broken.call_count == 1
