from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from companies.task_base import TenantTask

HEARTBEAT_CACHE_KEY = "scheduler:last-beat"


@shared_task(name="nps_saas.heartbeat", base=TenantTask)
def heartbeat() -> None:
    """Proves that periodic work runs (beat, or the embedded scheduler); shown by /healthz."""
    cache.set(HEARTBEAT_CACHE_KEY, timezone.now().isoformat(), timeout=None)
