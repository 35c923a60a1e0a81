"""GET /healthz: database always, Redis when configured, scheduler heartbeat for information."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import OperationalError, connections
from django.test import Client, override_settings
from django.utils import timezone

from nps_saas.tasks import HEARTBEAT_CACHE_KEY, heartbeat

pytestmark = pytest.mark.django_db

# Nothing listens on port 1: connection refused at once.
BAD_REDIS = "redis://127.0.0.1:1/0"


def healthz():
    return Client().get("/healthz")


def test_healthy(settings):
    response = healthz()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["latency_ms"] >= 0
    if settings.REDIS_URL:
        assert body["checks"]["redis"]["ok"] is True
    else:
        assert "redis" not in body["checks"]


@override_settings(REDIS_URL="")
def test_redis_not_checked_when_not_configured():
    body = healthz().json()
    assert set(body["checks"]) == {"database"}
    assert body["status"] == "ok"


@override_settings(REDIS_URL=BAD_REDIS)
def test_unreachable_redis_is_503():
    response = healthz()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1:1" not in response.content.decode()  # no connection details leak


def test_database_failure_is_503():
    with mock.patch.object(
        connections["default"],
        "cursor",
        side_effect=OperationalError("server closed the connection"),
    ):
        response = healthz()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert "server closed" not in response.content.decode()


def test_scheduler_heartbeat_is_reported_but_never_fails():
    cache.delete(HEARTBEAT_CACHE_KEY)
    body = healthz().json()
    assert body["scheduler"] == {"last_beat": None, "age_seconds": None}
    assert body["status"] == "ok"

    heartbeat()
    body = healthz().json()
    assert body["scheduler"]["age_seconds"] < 5
    assert body["scheduler"]["last_beat"]

    stale = (timezone.now() - timedelta(hours=3)).isoformat()
    cache.set(HEARTBEAT_CACHE_KEY, stale, timeout=60)
    response = healthz()
    assert response.status_code == 200
    assert response.json()["scheduler"]["age_seconds"] >= 3 * 3600
    cache.delete(HEARTBEAT_CACHE_KEY)


def test_only_get_and_head():
    assert Client().head("/healthz").status_code == 200
    assert Client().post("/healthz").status_code == 405


def test_no_login_and_no_tenant_data(company):
    body = healthz().json()
    assert set(body) == {"status", "checks", "scheduler"}
    assert company.slug not in str(body)
