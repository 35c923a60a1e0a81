"""``create_api_key``: a new API key for a company.

Contract (other tools rely on it): the key is alone on the LAST line of stdout; an unknown
company gives a one-line error on stderr and exit status 1.

Apps above companies extend the command (``nps_saas``'s adds ``--survey`` for Delighted's
API) through ``check_extra`` and ``key_created``, run in the key's transaction.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from companies import rls
from companies.management.cli import command_error
from companies.models import Company, Role
from companies.services import IssuedApiKey, api_key_create


class Command(BaseCommand):
    help = "Create an API key for a company. The key is printed alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="the company's slug")
        parser.add_argument("--name", default="Command line", help="a label for the key")
        parser.add_argument(
            "--read-only", action="store_true", help="a key that can read but not change data"
        )

    def check_extra(self, *, company: Company, options: dict[str, Any]) -> None:
        """Refuse bad extra options (CommandError) before anything is created."""

    def key_created(
        self, *, company: Company, issued: IssuedApiKey, options: dict[str, Any]
    ) -> None:
        """Called in the key's transaction, after it is created."""

    def handle(self, *args: Any, **options: Any) -> None:
        # An operator's command is a system job for row-level security (companies.rls).
        with rls.system(reason="an operator's command names the company"):
            self._handle(*args, **options)

    def _handle(self, *args: Any, **options: Any) -> None:
        slug = options["company"].strip()
        company = Company.objects.filter(slug=slug).first()
        if company is None:
            raise CommandError(f"Unknown company {slug!r}: pass the slug create_company printed")
        self.check_extra(company=company, options=options)
        try:
            with transaction.atomic():
                issued = api_key_create(
                    company=company,
                    name=options["name"],
                    role=Role.VIEWER if options["read_only"] else Role.ADMIN,
                )
                self.key_created(company=company, issued=issued, options=options)
        except ValidationError as exc:
            raise command_error(exc) from exc
        access = "read-only" if options["read_only"] else "full-access"
        self.stdout.write(
            f"Created {access} API key {issued.api_key.name!r} for {company.name!r}. "
            "It is shown only now; store it safely:"
        )
        self.stdout.write(issued.key)
