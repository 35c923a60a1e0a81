"""Tasks that exist only for the tests: the real worker imports this module (``--include``)."""

from __future__ import annotations

import os
from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.core.cache import cache

from companies.models import Company

COMPANY_NAME_KEY = "tests:company-name:{company_id}"


@shared_task(name="tests.record_company_name", base=DjangoTask)
def record_company_name(company_id: int) -> None:
    """Reads a row, so it proves the worker sees what the enqueuing transaction committed.

    The process id tells a test whether the worker ran it, or the test process inline.
    """
    company = Company.objects.get(pk=company_id)
    record: dict[str, Any] = {"name": company.name, "pid": os.getpid()}
    cache.set(COMPANY_NAME_KEY.format(company_id=company_id), record, timeout=300)


@shared_task(name="tests.fail", base=DjangoTask)
def fail() -> None:
    raise RuntimeError("this task always fails")
