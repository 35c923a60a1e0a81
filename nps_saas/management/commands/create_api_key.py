"""``create_api_key`` with ``--survey ID``: the key's calls to Delighted's API (``/v1/``) act
on that survey (its Delighted "project"). Everything else, the last-line contract included,
is companies' command; this one wins because nps_saas comes first in INSTALLED_APPS.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from companies.management.commands import create_api_key
from companies.models import Company
from companies.services import IssuedApiKey
from delighted_compat.api.services import api_key_bind_survey
from surveys.selectors import survey_get


class Command(create_api_key.Command):
    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--survey",
            help="a survey id: the key's calls to Delighted's API (/v1/) act on this survey "
            "(default: the company's survey for that API)",
        )

    def check_extra(self, *, company: Company, options: dict[str, Any]) -> None:
        survey_id = (options.get("survey") or "").strip()
        if survey_id and survey_get(company=company, public_id=survey_id) is None:
            raise CommandError(f"Unknown survey {survey_id!r} for company {company.slug!r}")

    def key_created(
        self, *, company: Company, issued: IssuedApiKey, options: dict[str, Any]
    ) -> None:
        survey_id = (options.get("survey") or "").strip()
        if survey_id:
            survey = survey_get(company=company, public_id=survey_id)
            api_key_bind_survey(company=company, api_key=issued.api_key, survey=survey)
