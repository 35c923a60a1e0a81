"""Celery tasks of the dashboards app (queue "rollups", see CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import shared_task
from celery.contrib.django.task import DjangoTask


@shared_task(name="dashboards.rollup_fold", base=DjangoTask)
def rollup_fold() -> int:
    """Beat, every few seconds: fold pending rollup deltas (reads are exact either way; the
    fold keeps them fast)."""
    from dashboards.services import rollup_fold as fold

    return fold()
