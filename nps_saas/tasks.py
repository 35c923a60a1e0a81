from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from companies.models import Company
from companies.task_base import TenantTask
from nps_saas.retention import companies_with_retention, retention_apply

HEARTBEAT_CACHE_KEY = "scheduler:last-beat"


@shared_task(name="nps_saas.heartbeat", base=TenantTask)
def heartbeat() -> None:
    """Proves that periodic work runs (beat, or the embedded scheduler); shown by /healthz."""
    cache.set(HEARTBEAT_CACHE_KEY, timezone.now().isoformat(), timeout=None)


@shared_task(name="nps_saas.retention_run_due", base=TenantTask, system_job=True)
def retention_run_due() -> None:
    """Daily: one retention task per company that set a retention period."""
    for company_id in companies_with_retention():
        retention_run_company.delay_on_commit(company_id)


@shared_task(name="nps_saas.retention_run_company", base=TenantTask)
def retention_run_company(company_id: int) -> None:
    """Apply one company's retention policy (nps_saas/retention.py)."""
    company = Company.objects.filter(pk=company_id).first()
    if company is not None:
        retention_apply(company=company)
