"""Tasks that exist only for the tests: the real worker imports this module (``--include``)."""

from __future__ import annotations

import os
from typing import Any

from celery import shared_task
from django.core.cache import cache

from companies.models import Company
from companies.task_base import TenantTask
from tests.shard_check import install_in_worker

# The suite's workers record their statements for the single-shard check (tests/shard_check.py).
install_in_worker()

# ``token`` is fresh for every send: company ids repeat from one run to the next (a new test
# database starts its sequences again) and the record outlives the run, so a key built from the
# id alone would hand a test the record an earlier run's worker left behind.
COMPANY_NAME_KEY = "tests:company-name:{token}"


@shared_task(name="tests.record_company_name", base=TenantTask)
def record_company_name(company_id: int, token: str) -> None:
    """Reads a row, so it proves the worker sees what the enqueuing transaction committed.

    The process id tells a test whether the worker ran it, or the test process inline; the
    record lands under ``token`` (unique per send), so only this send can have written it.
    """
    company = Company.objects.get(pk=company_id)
    record: dict[str, Any] = {"name": company.name, "pid": os.getpid()}
    cache.set(COMPANY_NAME_KEY.format(token=token), record, timeout=300)


@shared_task(name="tests.fail", base=TenantTask)
def fail() -> None:
    raise RuntimeError("this task always fails")
