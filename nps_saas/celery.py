"""The Celery application: Redis broker, JSON only, late acks, one message at a time.

Every setting lives in ``nps_saas/settings.py`` under the ``CELERY_`` prefix (queues, routes,
time limits, the beat schedule). Tasks are ``TenantTask``s (``companies.task_base``: a
DjangoTask that sets the company, or the system marker, for row-level security): enqueue
them with ``task.delay_on_commit(...)`` / ``task.apply_async_on_commit(...)`` so that a worker never
receives an id whose row is not committed yet, and a rolled-back transaction sends nothing.

Declare a task as ``@shared_task(name="<app>.<verb>", base=TenantTask)`` (a sweep across
companies adds ``system_job=True``): ``task_cls`` below already makes every task a
TenantTask; ``base=`` tells the type checker too.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nps_saas.settings")

app = Celery("nps_saas", task_cls="companies.task_base:TenantTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
