"""The base of every Celery task: the tenancy choke point for work done outside a request.

A task sees one company's rows, named by its ``company_id`` argument, or, declared with
``system_job=True`` (the periodic sweeps and dispatchers that serve every company), every
company's. Anything else runs with nothing visible, so a task that forgets both fails on its
first tenant query rather than reading another company's rows (``companies.rls``). Declare a
task as ``@shared_task(name="<app>.<verb>", base=TenantTask)``.
"""

from __future__ import annotations

import inspect
from typing import Any

from celery.contrib.django.task import DjangoTask

from companies import rls


class TenantTask(DjangoTask):
    system_job: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.system_job:
            with rls.system(reason=f"periodic system task {self.name}"):
                return super().__call__(*args, **kwargs)
        with rls.scoped(self._scope(args, kwargs)):
            return super().__call__(*args, **kwargs)

    def _scope(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> rls.Scope:
        if self.system_job:
            return rls.SYSTEM
        try:
            bound = inspect.signature(self.run).bind_partial(*args, **kwargs)
        except TypeError:
            return rls.NOBODY  # Celery itself reports the wrong arguments
        company_id = bound.arguments.get("company_id")
        return rls.NOBODY if company_id is None else rls.Scope(company_id=int(company_id))
