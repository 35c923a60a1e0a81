"""Concurrency: two senders racing on the same invitations; a real worker's fan-out."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from companies.models import Company
from notifications.models import Delivery, OutboxMessage
from surveys.models import Campaign, CampaignStatus, Invitation, InvitationStatus
from surveys.services import campaign_create, campaign_expand, invitations_send
from surveys.tests.sending_factories import active_survey, contacts
from tests.conftest import (  # noqa: F401 (the worker fixtures live there)
    CeleryWorker,
    _celery_worker_session,
    celery_worker_process,
)


@pytest.mark.django_db(transaction=True)
def test_two_senders_racing_send_each_invitation_once(company: Company) -> None:
    survey = active_survey(company)
    contacts(company, 60)
    campaign = campaign_create(
        company=company,
        survey=survey,
        audience={"all": True},
        scheduled_for=timezone.now() + timedelta(hours=1),
    )
    campaign_expand(company=company, campaign_id=campaign.pk)
    # What the dispatcher does, without enqueuing (eager tasks would send them inline).
    rows = Invitation.objects.for_company(company)
    rows.update(status=InvitationStatus.QUEUED)
    ids = list(rows.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 60
    barrier = threading.Barrier(2)
    claimed: list[int] = []
    errors: list[BaseException] = []

    def sender(order: list[int]) -> None:
        try:
            barrier.wait()
            # Each thread has its own database connection (Django's per-thread connections).
            claimed.append(invitations_send(company=company, invitation_ids=order).claimed)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=sender, args=(ids,)),
        threading.Thread(target=sender, args=(list(reversed(ids)),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(claimed) == 60
    recipients = [address for message in mail.outbox for address in message.to]
    assert len(recipients) == 60
    assert len(set(recipients)) == 60
    assert Delivery.objects.for_company(company).count() == 60
    statuses = set(Invitation.objects.for_company(company).values_list("status", flat=True))
    assert statuses == {InvitationStatus.SENT}


def test_campaign_fans_out_through_a_real_worker(
    celery_worker_process: CeleryWorker,  # noqa: F811 (the imported fixture)
    company: Company,
) -> None:
    """Expansion, dispatch and sends all run in the worker process (Redis broker); the
    worker's mail goes to the development outbox (EMAIL_PROVIDER=outbox there)."""
    OutboxMessage.objects.all().delete()
    survey = active_survey(company)
    people = contacts(company, 25)
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})

    def done() -> bool:
        return Campaign.objects.for_company(company).get(pk=campaign.pk).status == (
            CampaignStatus.DONE
        )

    celery_worker_process.wait_for(done, what="the campaign to be sent", timeout=60)
    invitations = Invitation.objects.for_company(company).filter(campaign=campaign)
    assert set(invitations.values_list("status", flat=True)) == {InvitationStatus.SENT}
    assert invitations.count() == 25
    recipients = [a for m in OutboxMessage.objects.all() for a in m.to]
    assert sorted(recipients) == sorted(str(p.email) for p in people)
    assert Delivery.objects.for_company(company).count() == 25
    # The test process sent nothing itself: the locmem outbox of this process is empty.
    assert mail.outbox == []
