"""The three settings profiles, checked in fresh processes with crafted environments.

Settings are read once per process, so every profile is loaded by a subprocess that starts
from an empty environment (plus PATH/HOME): nothing from the developer's shell leaks in.
The subprocesses of a module run side by side once (``outcomes``); each test reads its own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.waits import WAIT_SECONDS

MANAGE = str(settings.BASE_DIR / "manage.py")

PRODUCTION_ENV = {
    "NPS_MODE": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "nps.example.com",
    "SITE_URL": "https://nps.example.com",
    "DATABASE_URL": "postgres://nps:secret@db.internal:5432/nps",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/1",
    "EMAIL_PROVIDER": "postmark",
    "ANYMAIL_WEBHOOK_SECRET": "hook-user:" + secrets.token_urlsafe(24),
}
REQUIRED = [name for name in PRODUCTION_ENV if name != "NPS_MODE"]

# Prints what a process would run with; any ImproperlyConfigured ends it with a traceback.
PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "mode": s.NPS_MODE,
    "engine": s.DATABASES["default"]["ENGINE"],
    "eager": s.CELERY_TASK_ALWAYS_EAGER,
    "broker": s.CELERY_BROKER_URL,
    "email_backend": s.EMAIL_BACKEND,
    "outbox": s.DEV_OUTBOX_ENABLED,
    "scheduler": s.EMBEDDED_SCHEDULER,
    "webauthn_http": s.MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN,
}))
"""


def run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "nps_saas.settings",
        # A non-production profile writes its generated secret key here, not into var/.
        "NPS_VAR_DIR": str(tmp_path / "var"),
    }
    return subprocess.run(  # noqa: S603 (our interpreter, our arguments)
        [sys.executable, *args],
        env={**base, **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in PRODUCTION_ENV.items() if key != name}


CHECK = [MANAGE, "check"]
DEPLOY_CHECK = [MANAGE, "check", "--deploy", "--fail-level", "WARNING"]
STAND_INS = [
    ("EMAIL_PROVIDER", "outbox", "outbox cannot deliver mail in production"),
    ("EMAIL_PROVIDER", "carrier-pigeon", "EMAIL_PROVIDER must be one of"),
    ("DATABASE_URL", "sqlite:////tmp/nps.sqlite3", "DATABASE_URL must be a PostgreSQL URL"),
    ("CELERY_BROKER_URL", "memory://", "CELERY_BROKER_URL must be a Redis URL"),
    ("REDIS_URL", "locmem://", "REDIS_URL must be a Redis URL"),
]
UNKNOWN_MODES = ["prod", "Production", ""]

SCENARIOS: dict[str, tuple[list[str], dict[str, str]]] = {
    **{f"missing {name}": (CHECK, without(name)) for name in REQUIRED},
    "empty SECRET_KEY": (CHECK, {**PRODUCTION_ENV, "SECRET_KEY": ""}),
    "deploy": (DEPLOY_CHECK, PRODUCTION_ENV),
    "deploy with DEBUG": (DEPLOY_CHECK, {**PRODUCTION_ENV, "DEBUG": "true"}),
    "check": (CHECK, PRODUCTION_ENV),
    "production probe": (["-c", PROBE], {**PRODUCTION_ENV, "CELERY_TASK_ALWAYS_EAGER": "true"}),
    **{f"{name}={value}": (CHECK, {**PRODUCTION_ENV, name: value}) for name, value, _ in STAND_INS},
    # SMTP has no tracking webhooks: no secret to ask for.
    "smtp without a webhook secret": (
        CHECK,
        {**without("ANYMAIL_WEBHOOK_SECRET"), "EMAIL_PROVIDER": "smtp"},
    ),
    "unset probe": (["-c", PROBE], {}),
    "embedded probe": (["-c", PROBE], {"NPS_MODE": "embedded"}),
    "test probe": (["-c", PROBE], {"NPS_MODE": "test"}),
    **{f"mode {mode!r}": (CHECK, {**PRODUCTION_ENV, "NPS_MODE": mode}) for mode in UNKNOWN_MODES},
}

Outcome = Callable[[str], subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """Run every scenario once, in parallel; each in its own HOME and NPS_VAR_DIR."""

    def one(name: str) -> subprocess.CompletedProcess[str]:
        args, env = SCENARIOS[name]
        return run(args, env, tmp_path_factory.mktemp("settings"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = dict(zip(SCENARIOS, pool.map(one, SCENARIOS), strict=True))
    return done.__getitem__


def loaded_settings(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


# --- production -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REQUIRED)
def test_production_refuses_to_start_without(name: str, outcomes: Outcome) -> None:
    result = outcomes(f"missing {name}")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} must be set when NPS_MODE=production" in result.stderr


def test_smtp_needs_no_webhook_secret(outcomes: Outcome) -> None:
    result = outcomes("smtp without a webhook secret")
    assert result.returncode == 0, result.stderr


def test_an_empty_value_counts_as_missing(outcomes: Outcome) -> None:
    result = outcomes("empty SECRET_KEY")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_full_production_environment_passes_the_deploy_checks(outcomes: Outcome) -> None:
    result = outcomes("deploy")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_the_deploy_checks_would_catch_debug(outcomes: Outcome) -> None:
    """The check above is only worth something if it can fail."""
    result = outcomes("deploy with DEBUG")
    assert result.returncode != 0
    assert "security.W018" in result.stderr


def test_plain_check_passes_in_production(outcomes: Outcome) -> None:
    result = outcomes("check")
    assert result.returncode == 0, result.stderr


def test_production_never_falls_back_to_the_embedded_default(outcomes: Outcome) -> None:
    assert loaded_settings(outcomes("production probe")) == {
        "mode": "production",
        "engine": "django.db.backends.postgresql",
        "eager": False,  # although CELERY_TASK_ALWAYS_EAGER=true was set
        "broker": PRODUCTION_ENV["CELERY_BROKER_URL"],
        "email_backend": "anymail.backends.postmark.EmailBackend",
        "outbox": False,
        "scheduler": False,
        "webauthn_http": False,  # passkeys only over https
    }


@pytest.mark.parametrize(("name", "value", "message"), STAND_INS)
def test_production_refuses_development_stand_ins(
    name: str, value: str, message: str, outcomes: Outcome
) -> None:
    result = outcomes(f"{name}={value}")
    assert result.returncode != 0
    assert message in result.stderr


# --- choosing the profile -----------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["unset probe", "embedded probe"])
def test_the_embedded_default_is_chosen_only_when_asked_or_unset(
    scenario: str, outcomes: Outcome
) -> None:
    loaded = loaded_settings(outcomes(scenario))
    assert loaded["mode"] == "embedded"
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["eager"] is True
    assert loaded["broker"] == "memory://"
    assert loaded["outbox"] is True
    assert loaded["scheduler"] is True
    assert loaded["webauthn_http"] is True  # passkeys on http://localhost (make run)


def test_test_mode_uses_postgres_not_the_embedded_default(outcomes: Outcome) -> None:
    loaded = loaded_settings(outcomes("test probe"))
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["outbox"] is False
    assert loaded["scheduler"] is False


@pytest.mark.parametrize("mode", UNKNOWN_MODES)
def test_an_unknown_mode_fails(mode: str, outcomes: Outcome) -> None:
    result = outcomes(f"mode {mode!r}")
    assert result.returncode != 0
    assert "NPS_MODE must be embedded, test or production" in result.stderr


# --- headers on a real response ---------------------------------------------------------------


@pytest.mark.django_db
def test_responses_carry_csp_and_frame_denial(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
