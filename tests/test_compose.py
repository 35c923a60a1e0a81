"""docker-compose.yml and the Dockerfile, checked by reading them (Docker cannot run here).

What can be proven without Docker: the services exist and are wired to each other, every
command they run exists in this code base, every variable they set is one the settings read,
and the environment they set is a complete production configuration.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands

from tests.conftest import worker_queues
from tests.envvars import ROOT, settings_variables
from tests.waits import WAIT_SECONDS

APP_SERVICES = ("web", "worker", "beat")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<op>:?[-?])(?P<arg>[^}]*)\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def command_of(service: str) -> list[str]:
    command = services()[service]["command"]
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if words[:2] == ["sh", "-c"]:
        words = shlex.split(words[2])
    return words


def commands_of(service: str) -> list[list[str]]:
    """The service's command split at ``&&`` into the programs it runs."""
    runs: list[list[str]] = [[]]
    for word in command_of(service):
        if word == "&&":
            runs.append([])
        elif word != "exec":
            runs[-1].append(word)
    return runs


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with ``given`` as the .env."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if given.get(name):
            return given[name]
        if op.endswith("?"):
            raise LookupError(f"{name}: {arg}")
        return arg

    return INTERPOLATION.sub(one, value)


def app_environment(given: dict[str, str]) -> dict[str, str]:
    raw = services()["web"]["environment"]
    return {name: interpolate(str(value), given) for name, value in raw.items()}


def test_the_stack_has_its_six_services() -> None:
    assert set(services()) == {"web", "worker", "beat", "postgres", "redis", "mailpit"}
    assert services()["postgres"]["image"].startswith("postgres:16")
    assert services()["redis"]["image"].startswith("redis:7")
    assert services()["mailpit"]["image"].startswith("axllent/mailpit")


def test_app_services_share_one_production_configuration() -> None:
    environments = [services()[name]["environment"] for name in APP_SERVICES]
    assert environments[0] == environments[1] == environments[2]
    env = environments[0]
    assert env["NPS_MODE"] == "production"
    assert env["SECURE_SSL_REDIRECT"] == "false"  # plain http on localhost
    assert (env["EMAIL_PROVIDER"], env["EMAIL_HOST"], env["EMAIL_PORT"]) == (
        "smtp",
        "mailpit",
        "1025",
    )
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")


def test_web_and_worker_share_the_uploads() -> None:
    """An import is uploaded through web and read by the worker: MEDIA_ROOT is one volume."""
    media_root = services()["web"]["environment"]["MEDIA_ROOT"]
    for name in ("web", "worker"):
        assert f"media:{media_root}" in services()[name]["volumes"]
    assert "media" in compose()["volumes"]
    # The image creates the mount point for its non-root user (a new volume copies it).
    assert media_root in (ROOT / "Dockerfile").read_text()


def test_the_secret_key_must_come_from_the_operator() -> None:
    value = services()["web"]["environment"]["SECRET_KEY"]
    assert INTERPOLATION.fullmatch(value), "SECRET_KEY must be ${SECRET_KEY:?...}, not a literal"
    with pytest.raises(LookupError, match="SECRET_KEY"):
        app_environment({})


def test_every_variable_the_stack_sets_is_read_by_the_settings() -> None:
    unknown = set(services()["web"]["environment"]) - settings_variables()
    assert not unknown, f"docker-compose.yml sets variables nothing reads: {sorted(unknown)}"


def test_the_stack_environment_is_a_complete_production_configuration(tmp_path: Path) -> None:
    env = app_environment({"SECRET_KEY": "compose-test-" + "x" * 50})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_app_services_wait_for_healthy_services() -> None:
    for name in APP_SERVICES:
        depends = services()[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["web", "worker", "postgres", "redis"])
def test_long_running_services_have_healthchecks(name: str) -> None:
    assert services()[name]["healthcheck"]["test"]


def test_web_migrates_collects_and_serves_the_wsgi_app() -> None:
    runs = commands_of("web")
    assert [run[:3] for run in runs[:2]] == [
        ["python", "manage.py", "migrate"],
        ["python", "manage.py", "collectstatic"],
    ]
    gunicorn = runs[-1]
    assert gunicorn[0] == "gunicorn"
    assert importlib.util.find_spec("gunicorn") is not None
    module_name, attribute = gunicorn[1].split(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute))
    assert "healthz" in " ".join(services()["web"]["healthcheck"]["test"])


def test_every_management_command_the_stack_runs_exists() -> None:
    known = get_commands()
    used = [
        run[2]
        for name in APP_SERVICES
        for run in commands_of(name)
        if run[:2] == ["python", "manage.py"]
    ]
    assert used
    assert set(used) <= set(known)


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_celery_services_use_the_project_app(name: str) -> None:
    [run] = commands_of(name)
    assert run[:3] == ["celery", "-A", "nps_saas"]
    assert importlib.util.find_spec("celery") is not None
    from nps_saas import celery_app

    assert celery_app.main == "nps_saas"
    assert run[3] == name


def test_the_worker_consumes_every_declared_queue() -> None:
    [run] = commands_of("worker")
    queues = run[run.index("-Q") + 1].split(",")
    assert set(queues) == set(worker_queues())


def test_the_dockerfile_builds_from_the_lock_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.strip() for line in dockerfile.splitlines() if line and line[0] != "#"]
    assert instructions[0] == "FROM python:3.11-slim"
    assert "uv sync --frozen --no-dev" in dockerfile
    uv_pin = re.search(r'"uv==([0-9.]+)"', dockerfile)
    makefile_pin = re.search(r"UV_VERSION := ([0-9.]+)", (ROOT / "Makefile").read_text())
    assert uv_pin
    assert makefile_pin
    assert uv_pin[1] == makefile_pin[1]
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    assert "collectstatic" in dockerfile
    # The build never copies local state or secrets into the image.
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var", ".git"} <= set(ignored)
