"""Data retention of the website widget: services run by nps_saas/retention.py.

A widget view (who was shown the survey, on which page, with which properties) older than the
cutoff is deleted: its only later use is the "do not show again so soon" window, far shorter
than any retention period. The answer it led to is a Response, anonymised by its own app.
"""

from __future__ import annotations

from datetime import datetime

from companies.models import Company
from companies.retention import BATCH_SIZE, in_batches
from widget.models import WidgetView


def widget_views_delete_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Delete widget views shown before ``cutoff``; returns how many."""
    rows = WidgetView.objects.for_company(company).filter(shown_at__lt=cutoff)

    def delete(pks: list[int]) -> None:
        WidgetView.objects.for_company(company).filter(pk__in=pks).delete()

    return in_batches(rows, delete, batch_size=batch_size)
