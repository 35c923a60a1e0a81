""".env.example documents every variable the settings read, and nothing they do not."""

from __future__ import annotations

import re

from tests.envvars import (
    ROOT,
    production_required_variables,
    project_variables,
    settings_variables,
)

LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def documented() -> dict[str, bool]:
    """Variable name -> whether its line is active (not commented out)."""
    found: dict[str, bool] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            found[match["name"]] = match["comment"] is None
    return found


def test_the_scan_finds_the_variables_we_know_of() -> None:
    """Guards the scanner itself: if it found nothing, the test below would pass vacuously."""
    assert {"NPS_MODE", "SECRET_KEY", "DATABASE_URL", "PASSWORD_HASHERS", "PORT"} <= (
        settings_variables()
    )


def test_every_variable_the_settings_read_is_documented() -> None:
    missing = settings_variables() - set(documented())
    assert not missing, f"add these to .env.example with a comment: {sorted(missing)}"


def test_nothing_documented_is_unread() -> None:
    stale = set(documented()) - project_variables()
    assert not stale, f".env.example documents variables nothing reads: {sorted(stale)}"


def test_the_active_lines_are_what_production_requires() -> None:
    active = {name for name, is_active in documented().items() if is_active}
    assert active == production_required_variables() | {"NPS_MODE"}
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"} <= (
        active
    )


def test_the_example_holds_no_secret() -> None:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            values[match["name"]] = match["value"]
    assert values["SECRET_KEY"] == ""
    for name, value in values.items():
        if name.endswith(("TOKEN", "SECRET", "SECRET_KEY", "PASSWORD", "API_KEY")):
            assert value == "", f"{name} must be left empty in .env.example"
