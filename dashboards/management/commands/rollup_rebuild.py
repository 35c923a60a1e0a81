"""Recount rollups from the responses table: after loading responses with the rollup triggers
disabled (a bulk load), or to check nothing drifted. Safe while answers keep arriving."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from companies import rls
from companies.models import Company
from dashboards.services import rollup_fold, rollup_rebuild


class Command(BaseCommand):
    help = "Recount the rollup of one company (--company <slug>) or of every company (--all)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--company", metavar="SLUG", help="The company's slug.")
        which.add_argument("--all", action="store_true", help="Every company, one at a time.")

    def handle(self, *args: Any, **options: Any) -> None:
        # An operator's command is a system job for row-level security (companies.rls).
        with rls.system(reason="an operator rebuilds rollups across companies"):
            self._handle(*args, **options)

    def _handle(self, *args: Any, **options: Any) -> None:
        if options["all"]:
            companies = Company.objects.order_by("pk").iterator()
        else:
            company = Company.objects.filter(slug=options["company"]).first()
            if company is None:
                raise CommandError(f"No company with the slug {options['company']!r}.")
            companies = iter([company])
        done = 0
        for company in companies:
            rollup_rebuild(company=company)
            done += 1
        # Deltas of companies deleted meanwhile, and of none of the above, are folded as usual.
        rollup_fold()
        self.stdout.write(f"Rebuilt the rollup of {done} compan{'y' if done == 1 else 'ies'}.")
