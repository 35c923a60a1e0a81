"""The sender's rate limit holds across two real worker processes (shared Redis bucket)."""

from __future__ import annotations

import time
from datetime import time as clock_time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from companies.models import Company
from notifications.models import Channel, Delivery
from notifications.tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, LoopbackTwilio, sms_ready
from nps_saas.celery import app
from surveys.models import Contact, Invitation, InvitationStatus
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.invitations import SMS_SEND_BATCH_SIZE
from surveys.tasks import send_invitations
from surveys.tests.sending_factories import active_survey
from tests.conftest import TEST_QUEUE, start_celery_worker, stop_celery_worker

RATE = 10.0
COUNT = 40


def _queued_sms_campaign(company: Company, count: int) -> list[int]:
    survey = active_survey(company)
    Contact.objects.bulk_create(
        Contact(company=company, phone=f"+1212555{n:04d}", time_zone="UTC") for n in range(count)
    )
    campaign = campaign_create(
        company=company,
        survey=survey,
        audience={"all": True},
        channel=Channel.SMS,
        scheduled_for=timezone.now() + timedelta(hours=1),
    )
    campaign_expand(company=company, campaign_id=campaign.pk)
    rows = Invitation.objects.for_company(company)
    rows.update(status=InvitationStatus.QUEUED)
    return list(rows.order_by("pk").values_list("pk", flat=True))


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_senders_rate_limit(company: Company, tmp_path: Any) -> None:
    """40 SMS in tasks of 20 taken by two worker processes, sender limited to 10/s: no
    second ever carries more than the limit allows, and the limit is used (not starved)."""
    # A sender of its own per run: the bucket lives in Redis across test runs.
    sms_ready(company, sender=f"+1415{int(time.time()) % 10_000_000:07d}", rate=RATE)
    # Send at any hour: quiet hours are not what this measures.
    company.quiet_hours_start, company.quiet_hours_end = clock_time(0, 0), clock_time.max
    company.save(update_fields=["quiet_hours_start", "quiet_hours_end"])
    ids = _queued_sms_campaign(company, COUNT)
    with LoopbackTwilio() as twilio:
        env = {
            "SMS_PROVIDER": "twilio",
            "TWILIO_API_URL": twilio.url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        }
        workers = [
            start_celery_worker(log_path=tmp_path / f"worker{n}.log", queues=[TEST_QUEUE], env=env)
            for n in range(2)
        ]
        eager, app.conf.task_always_eager = app.conf.task_always_eager, False
        try:
            for start in range(0, len(ids), SMS_SEND_BATCH_SIZE):
                send_invitations.apply_async(
                    args=(company.pk, ids[start : start + SMS_SEND_BATCH_SIZE]), queue=TEST_QUEUE
                )
            pending = Invitation.objects.for_company(company).filter(
                status__in=[InvitationStatus.QUEUED, InvitationStatus.SENDING]
            )
            workers[0].wait_for(lambda: not pending.exists(), what="every SMS sent")
        finally:
            app.conf.task_always_eager = eager
            for worker in workers:
                stop_celery_worker(worker)
        received = sorted(at for at, _to in twilio.received)
    assert len(received) == COUNT
    assert len(set(twilio.recipients)) == COUNT
    assert Delivery.objects.for_company(company).filter(status="sent").count() == COUNT
    # Both workers sent (each took one of the two tasks).
    assert all(w.log_path.read_bytes().count(b" succeeded in ") for w in workers)
    # The limit holds globally: in any two-second window at most 2 x RATE messages, +1 for
    # the token a full bucket holds at the window's start and +1 for arrival jitter (the
    # times here are arrivals, which add each call's latency: a worker's first call, on a
    # cold connection, lands up to ~0.1 s late, next to the following message).
    for index, first in enumerate(received):
        within = sum(1 for at in received[index:] if at < first + 2.0)
        assert within <= 2 * RATE + 2, f"{within} messages within two seconds"
    # ... and it is used: the achieved rate is close to the limit.
    achieved = (COUNT - 1) / (received[-1] - received[0])
    assert 0.8 * RATE <= achieved <= 1.05 * RATE, achieved
