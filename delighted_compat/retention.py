"""Data retention of the Delighted importer: services run by nps_saas/retention.py.

Imported answers are anonymised by the responses app like any other; what this app adds to
them (Delighted's notes and person id) is cleared with them, keeping Delighted's response id
so that importing the same export again does not bring the answers back. Finished import
files older than the cutoff are deleted with their error reports.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from companies.models import Company
from companies.retention import BATCH_SIZE, in_batches
from delighted_compat.models import DelightedImport, DelightedImportStatus, DelightedResponse

IMPORT_BATCH_SIZE = 20


def delighted_responses_strip_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Clear the notes and person id of imported answers created before ``cutoff``."""
    rows = (
        DelightedResponse.objects.for_company(company)
        .filter(response__created_at__lt=cutoff, response__company=company)
        .filter(~Q(notes=[]) | ~Q(person_id=""))
    )

    def strip(pks: list[int]) -> None:
        DelightedResponse.objects.for_company(company).filter(pk__in=pks).update(
            notes=[], person_id=""
        )

    return in_batches(rows, strip, batch_size=batch_size)


def delighted_imports_delete_before(
    *, company: Company, cutoff: datetime, batch_size: int = IMPORT_BATCH_SIZE
) -> int:
    """Delete Delighted imports from before ``cutoff`` that are not running, with their files."""
    rows = (
        DelightedImport.objects.for_company(company)
        .filter(created_at__lt=cutoff)
        .exclude(status=DelightedImportStatus.RUNNING)
    )

    def delete(pks: list[int]) -> None:
        imports = DelightedImport.objects.for_company(company).filter(pk__in=pks)
        # Files first: if a storage call fails, the row stays and tomorrow's run retries.
        for item in imports:
            for stored in (item.file, item.error_report):
                if stored.name:
                    stored.delete(save=False)
        imports.delete()

    return in_batches(rows, delete, batch_size=batch_size)
