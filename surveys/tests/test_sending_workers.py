"""Concurrency: two senders racing on the same invitations; a real worker's fan-out."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from companies.models import Company
from notifications.models import Delivery, OutboxMessage
from nps_saas.celery import app
from surveys.models import Campaign, CampaignStatus, Invitation, InvitationStatus
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.send import invitations_send
from surveys.tasks import send_invitations
from surveys.tests.sending_factories import active_survey, contacts
from tests.conftest import (  # noqa: F401 (the worker fixtures live there)
    TEST_QUEUE,
    CeleryWorker,
    _celery_worker_session,
    celery_worker_process,
    start_celery_worker,
    stop_celery_worker,
)
from tests.fake_provider import LoopbackPostmark
from tests.waits import WAIT_SECONDS


def _queued_campaign(company: Company, size: int) -> list[int]:
    """A campaign expanded into ``size`` invitations, all moved to queued as the dispatcher
    does (without enqueuing: the test hands them to its senders itself)."""
    survey = active_survey(company)
    contacts(company, size)
    campaign = campaign_create(
        company=company,
        survey=survey,
        audience={"all": True},
        scheduled_for=timezone.now() + timedelta(hours=1),
    )
    campaign_expand(company=company, campaign_id=campaign.pk)
    rows = Invitation.objects.for_company(company)
    rows.update(status=InvitationStatus.QUEUED)
    return list(rows.order_by("pk").values_list("pk", flat=True))


def _succeeded(worker: CeleryWorker) -> int:
    """Tasks the worker has finished (its INFO log says "… succeeded in …s")."""
    return worker.log_path.read_bytes().count(b" succeeded in ")


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_two_worker_processes_racing_send_each_invitation_once(
    company: Company, tmp_path: Any
) -> None:
    """Two real worker processes take overlapping send tasks for the same 300 invitations
    (all of them, reversed, odd, even) from one queue, sending through anymail's Postmark
    backend to a fake Postmark on loopback: every address reaches the provider once."""
    ids = _queued_campaign(company, 300)
    queue = TEST_QUEUE
    with LoopbackPostmark(delay=0.2) as provider:
        env = {
            "EMAIL_PROVIDER": "postmark",
            "POSTMARK_SERVER_TOKEN": "test",
            "POSTMARK_USE_BULK_API": "true",
            "POSTMARK_API_URL": provider.url,
            "EMAIL_RATE_PER_SECOND": "100000",
            "EMAIL_RATE_BURST": "100000",
        }
        workers = [
            start_celery_worker(log_path=tmp_path / f"worker{n}.log", queues=[queue], env=env)
            for n in range(2)
        ]
        eager, app.conf.task_always_eager = app.conf.task_always_eager, False
        try:
            orders = [ids, ids[::-1], ids[1::2], ids[::2], ids[::-1], ids]
            for order in orders:
                send_invitations.apply_async(args=(company.pk, order), queue=queue)
            pending = Invitation.objects.for_company(company).filter(
                status__in=[InvitationStatus.QUEUED, InvitationStatus.SENDING]
            )
            workers[0].wait_for(lambda: not pending.exists(), what="every invitation sent")
            # The tasks still in the queue find nothing left to claim; let them finish.
            workers[0].wait_for(
                lambda: sum(_succeeded(w) for w in workers) == len(orders),
                what="every send task to finish",
            )
            # Both processes took tasks.
            assert all(_succeeded(w) for w in workers)
        finally:
            app.conf.task_always_eager = eager
            for worker in workers:
                stop_celery_worker(worker)
    # Together they sent each address exactly once.
    assert sorted(provider.recipients) == sorted(f"person{n}@example.com" for n in range(300))
    assert Delivery.objects.for_company(company).count() == 300
    statuses = set(Invitation.objects.for_company(company).values_list("status", flat=True))
    assert statuses == {InvitationStatus.SENT}


@pytest.mark.django_db(transaction=True)
def test_two_senders_racing_send_each_invitation_once(company: Company) -> None:
    ids = _queued_campaign(company, 60)
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
        thread.join(timeout=WAIT_SECONDS)
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

    celery_worker_process.wait_for(done, what="the campaign to be sent")
    invitations = Invitation.objects.for_company(company).filter(campaign=campaign)
    assert set(invitations.values_list("status", flat=True)) == {InvitationStatus.SENT}
    assert invitations.count() == 25
    recipients = [a for m in OutboxMessage.objects.all() for a in m.to]
    assert sorted(recipients) == sorted(str(p.email) for p in people)
    assert Delivery.objects.for_company(company).count() == 25
    # The test process sent nothing itself: the locmem outbox of this process is empty.
    assert mail.outbox == []
