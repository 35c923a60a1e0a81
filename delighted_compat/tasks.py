"""Celery tasks of the Delighted importer: ids in, a service call out."""

from __future__ import annotations

from celery import shared_task

from companies.models import Company
from companies.task_base import TenantTask
from delighted_compat.importer import delighted_import_run, delighted_imports_rewake


@shared_task(
    name="delighted_compat.import_file",
    base=TenantTask,
    time_limit=3 * 3600,
    soft_time_limit=3 * 3600 - 60,
)
def import_file(company_id: int, import_pk: int) -> None:
    company = Company.objects.get(pk=company_id)
    delighted_import_run(company=company, import_pk=import_pk)


@shared_task(name="delighted_compat.imports_rewake", base=TenantTask, system_job=True)
def imports_rewake() -> int:
    """Beat, every minute: imports whose message was lost are woken again."""
    return delighted_imports_rewake()
