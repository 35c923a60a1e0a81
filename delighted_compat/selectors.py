"""Reads of the Delighted importer (the company is always a required keyword)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max

from companies.models import Company
from delighted_compat.importer import KIND_ORDER
from delighted_compat.models import DelightedImport


def delighted_import_get(*, company: Company, public_id: str) -> DelightedImport | None:
    return DelightedImport.objects.for_company(company).filter(public_id=public_id).first()


def delighted_batch(*, company: Company, batch: str) -> list[DelightedImport]:
    """The files uploaded together, people first then answers then suppressions (the order
    they are imported in); unknown kinds last."""
    files = list(
        DelightedImport.objects.for_company(company)
        .filter(batch=batch)
        .select_related("survey")
        .order_by("created_at", "pk")
    )
    order = {kind.value: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(files, key=lambda f: order.get(f.kind, len(order)))


def delighted_recent_batches(*, company: Company, limit: int = 10) -> list[dict[str, Any]]:
    """The latest uploads: one row per batch (``files``: how many, ``uploaded``: when)."""
    return list(
        DelightedImport.objects.for_company(company)
        .values("batch")
        .annotate(files=Count("pk"), uploaded=Max("created_at"))
        .order_by("-uploaded")[:limit]
    )
