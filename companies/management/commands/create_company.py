"""``create_company``: a company and its owner in one step, for scripts and self-hosters.

Contract (other tools rely on it): the LAST line on stdout is the company slug; bad input
gives a one-line error on stderr, exit status 1, and nothing is created.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from companies import rls
from companies.management.cli import command_error
from companies.models import TIME_ZONE_CHOICES, Industry
from companies.services import company_create_with_owner


class Command(BaseCommand):
    help = (
        "Create a company and its owner (email marked verified). "
        "The last line of the output is the company slug."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="the company's name")
        parser.add_argument("--owner-email", required=True, help="the owner's login")
        parser.add_argument("--password", required=True, help="the owner's password")
        parser.add_argument(
            "--industry",
            default=Industry.OTHER.value,
            help=f"one of: {', '.join(Industry.values)} (default: other)",
        )
        parser.add_argument(
            "--timezone", default="UTC", help="an IANA time zone, e.g. Asia/Almaty (default: UTC)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # An operator's command is a system job for row-level security (companies.rls).
        with rls.system(reason="an operator's command creates a company"):
            self._handle(*args, **options)

    def _handle(self, *args: Any, **options: Any) -> None:
        industry = options["industry"].strip().lower()
        if industry not in Industry.values:
            raise CommandError(
                f"Unknown industry {options['industry']!r}; choose one of: "
                + ", ".join(Industry.values)
            )
        time_zone = options["timezone"].strip()
        if time_zone not in {value for value, _label in TIME_ZONE_CHOICES}:
            raise CommandError(
                f"Unknown time zone {options['timezone']!r}; use an IANA name such as "
                "Europe/Berlin, Asia/Almaty or UTC"
            )
        try:
            company = company_create_with_owner(
                name=options["name"],
                owner_email=options["owner_email"],
                password=options["password"],
                industry=industry,
                time_zone=time_zone,
            )
        except ValidationError as exc:
            raise command_error(exc) from exc
        owner_email = company.memberships.get().user.email
        self.stdout.write(f"Created company {company.name!r} with owner {owner_email}.")
        self.stdout.write(company.slug)
