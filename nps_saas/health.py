"""``GET /healthz``: is this process able to serve? For load balancers and uptime monitors.

* database: always checked (``SELECT 1``);
* redis: checked when ``REDIS_URL`` is set (a ``PING`` with a short timeout), because the
  cache, rate limits, locks and the Celery broker live there;
* scheduler: the age of the last heartbeat written by the periodic ``nps_saas.heartbeat``
  task. Informational only: a stalled beat does not make the web process unhealthy, and it
  should not be taken out of rotation for it.

200 with ``"status": "ok"`` when every failing-type check passes, 503 with ``"error"``
otherwise. No authentication, no tenant data, never cached. Error details go to the log;
the response names only the exception class, so it leaks no hostnames or credentials.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from nps_saas.tasks import HEARTBEAT_CACHE_KEY

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 1.0


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def check_database() -> dict[str, Any]:
    started = time.monotonic()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("health check: database unavailable: %s", exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": _elapsed_ms(started)}


def check_redis(url: str) -> dict[str, Any]:
    started = time.monotonic()
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        logger.warning("health check: redis unavailable: %s", exc)
        return {"ok": False, "error": type(exc).__name__}
    finally:
        client.close()
    return {"ok": True, "latency_ms": _elapsed_ms(started)}


def scheduler_heartbeat() -> dict[str, Any]:
    """When periodic work last ran (``null`` if never seen, or if the cache is unreachable)."""
    try:
        raw = cache.get(HEARTBEAT_CACHE_KEY)
    except (redis.RedisError, OSError):
        return {"last_beat": None, "age_seconds": None}
    if not isinstance(raw, str):
        return {"last_beat": None, "age_seconds": None}
    try:
        last = datetime.fromisoformat(raw)
    except ValueError:
        return {"last_beat": None, "age_seconds": None}
    return {"last_beat": raw, "age_seconds": round((timezone.now() - last).total_seconds(), 1)}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, Any]] = {"database": check_database()}
    if settings.REDIS_URL:
        checks["redis"] = check_redis(settings.REDIS_URL)
    healthy = all(check["ok"] for check in checks.values())
    # The heartbeat lives in the cache (Redis when configured): do not wait on it twice.
    redis_down = not checks.get("redis", {"ok": True})["ok"]
    body = {
        "status": "ok" if healthy else "error",
        "checks": checks,
        "scheduler": {"last_beat": None, "age_seconds": None}
        if redis_down
        else scheduler_heartbeat(),
    }
    return JsonResponse(body, status=200 if healthy else 503)
