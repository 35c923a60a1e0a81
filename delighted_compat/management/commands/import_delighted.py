"""Import Delighted's CSV exports (responses, people, unsubscribes, bounces) into a company."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from companies import rls
from companies.models import Company
from delighted_compat.importer import (
    KIND_ORDER,
    delighted_import_create,
    delighted_import_run,
    delighted_import_start,
    detect_kind,
    suggest_mapping,
    validate,
)
from delighted_compat.models import DelightedImport, DelightedImportStatus, ExportKind
from surveys.models import Survey


class Command(BaseCommand):
    help = (
        "Import Delighted CSV exports into a company: FILE… are responses, people, "
        "unsubscribes or bounces (told apart by their headers; force one with KIND=FILE)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", metavar="SLUG", required=True)
        parser.add_argument(
            "--survey",
            metavar="ID",
            help="The survey (public id) answers go to; default: the company's survey for "
            "Delighted, the one its API at /v1/ uses too (created if needed, named Delighted).",
        )
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args: Any, **options: Any) -> None:
        # An operator's command is a system job for row-level security (companies.rls).
        with rls.system(reason="an operator's command names the company"):
            self._handle(*args, **options)

    def _handle(self, *args: Any, **options: Any) -> None:
        company = Company.objects.filter(slug=options["company"]).first()
        if company is None:
            raise CommandError(f"No company with the slug {options['company']!r}.")
        survey = None
        if options["survey"]:
            survey = Survey.objects.for_company(company).filter(public_id=options["survey"]).first()
            if survey is None:
                raise CommandError(f"No survey {options['survey']!r} in this company.")
        files = [self._file(arg) for arg in options["files"]]
        # Every file checked (readable, kind known, columns complete) before any is imported.
        with transaction.atomic():
            imports: list[tuple[DelightedImport, str]] = []
            batch = None
            for path, named in files:
                with path.open("rb") as handle:
                    upload = SimpleUploadedFile(path.name, handle.read())
                try:
                    imp = delighted_import_create(company=company, upload=upload, batch=batch)
                except ValidationError as exc:
                    raise CommandError(" ".join(exc.messages)) from exc
                batch = imp.batch
                kind = named or imp.kind or detect_kind(imp.headers)
                if not kind:
                    raise CommandError(
                        f"{path.name}: cannot tell which export this is from its columns; "
                        "name it, e.g. responses=FILE."
                    )
                try:
                    validate(kind, imp.headers, suggest_mapping(imp.headers, kind)[0])
                except ValidationError as exc:
                    raise CommandError(f"{path.name}: {' '.join(exc.messages)}") from exc
                imports.append((imp, kind))
        imports.sort(key=lambda item: KIND_ORDER.index(ExportKind(item[1])))
        for waiting, kind in imports:
            # Run here, not in a worker: the command's caller waits for the result.
            delighted_import_start(
                company=company, imp=waiting, kind=kind, survey=survey, in_worker=False
            )
            delighted_import_run(company=company, import_pk=waiting.pk)
            imp = DelightedImport.objects.for_company(company).get(pk=waiting.pk)
            if imp.status == DelightedImportStatus.FAILED:
                raise CommandError(f"{imp.file_name}: {imp.failure}")
            self.stdout.write(
                f"{imp.file_name} ({kind}): {imp.rows_done} rows, {imp.created_count} created, "
                f"{imp.updated_count} updated, {imp.unchanged_count} unchanged, "
                f"{imp.invalid_count} invalid"
            )
            for error in imp.errors[:20]:
                self.stdout.write(f"  line {error['line']}, {error['column']}: {error['reason']}")

    def _file(self, arg: str) -> tuple[Path, str]:
        kind, sep, rest = arg.partition("=")
        if sep and kind in ExportKind.values:
            path = Path(rest)
        else:
            kind, path = "", Path(arg)
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        return path, kind
