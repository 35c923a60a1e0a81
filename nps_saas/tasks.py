from __future__ import annotations

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_CACHE_KEY = "scheduler:last-beat"


@shared_task(name="nps_saas.heartbeat", base=DjangoTask)
def heartbeat() -> None:
    """Proves that periodic work runs (beat, or the embedded scheduler); shown by /healthz."""
    cache.set(HEARTBEAT_CACHE_KEY, timezone.now().isoformat(), timeout=None)
