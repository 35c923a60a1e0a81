"""Celery tasks of the dashboards app (queue "rollups", see CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import shared_task

from companies.task_base import TenantTask
from companies.wake import INFRA_RETRY


@shared_task(name="dashboards.rollup_fold", base=TenantTask, system_job=True)
def rollup_fold() -> int:
    """Beat, every few seconds: fold pending rollup deltas (reads are exact either way; the
    fold keeps them fast)."""
    from dashboards.services import rollup_fold as fold

    return fold()


@shared_task(name="dashboards.digests_dispatch_due", base=TenantTask, system_job=True)
def digests_dispatch_due() -> int:
    """Beat, every few minutes: enqueue one ``dashboards.digest_send`` per digest due."""
    from dashboards.digests import digests_dispatch_due as dispatch

    return dispatch()


@shared_task(name="dashboards.digest_send", base=TenantTask, acks_late=True, **INFRA_RETRY)
def digest_send(company_id: int, kind: str, object_id: int) -> bool:
    """Claim and send one digest's latest occurrence (at most once: dashboards/digests.py)."""
    from companies.models import Company
    from dashboards.digests import ADDRESS, MEMBER
    from dashboards.digests import digest_send as send

    company = Company.objects.filter(pk=company_id).first()
    if company is None or kind not in (MEMBER, ADDRESS):
        return False
    return send(company=company, kind=MEMBER if kind == MEMBER else ADDRESS, object_id=object_id)
