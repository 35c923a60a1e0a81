"""The project's own apps, for the tests that walk every model (retention, the personal data
inventory): derived from the installed apps, so a new app is walked without being listed."""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings


def project_apps() -> set[str]:
    """Labels of the installed apps whose code lives in this repository, not a library in
    the virtualenv (which may itself sit inside the checkout, as ``.venv``)."""
    root = Path(settings.BASE_DIR).resolve()
    labels = set()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(root) and not {"site-packages", ".venv"} & set(path.parts):
            labels.add(config.label)
    return labels
