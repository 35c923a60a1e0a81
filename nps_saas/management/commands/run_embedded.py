"""``manage.py run_embedded [ADDR:PORT]``: what ``make run`` serves with.

Starts the in-process scheduler (:mod:`nps_saas.scheduler`, the embedded stand-in for
``celery beat``) when ``settings.EMBEDDED_SCHEDULER`` is on, then Django's development server
without the autoreloader: the reloader would run this command twice, and so two schedulers.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from nps_saas.celery import app
from nps_saas.scheduler import EmbeddedScheduler, start_in_thread


class Command(BaseCommand):
    help = "Serve the embedded default: the development server plus the in-process scheduler."

    requires_system_checks = []  # runserver runs them

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "addrport",
            nargs="?",
            default=f"127.0.0.1:{os.environ.get('PORT') or 8000}",
            help="Address and port to serve on (default 127.0.0.1:$PORT, PORT defaults to 8000).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.NPS_MODE == settings.PRODUCTION:
            raise CommandError(
                "run_embedded is the development server; in production run gunicorn, "
                "a Celery worker and beat (see docker-compose.yml)."
            )
        if settings.EMBEDDED_SCHEDULER:
            scheduler = EmbeddedScheduler(app=app, beat_schedule=settings.CELERY_BEAT_SCHEDULE)
            start_in_thread(scheduler)
            names = ", ".join(entry.name for entry in scheduler.entries) or "nothing scheduled"
            self.stdout.write(f"Embedded scheduler started ({names}).")
        else:
            self.stdout.write("EMBEDDED_SCHEDULER is off: periodic work needs celery beat.")
        call_command("runserver", options["addrport"], use_reloader=False)
