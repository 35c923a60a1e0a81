"""Data retention of the surveys app: services run by nps_saas/retention.py.

Invitations older than the cutoff stay as rows (the sending funnel and the throttle window
count them) but lose the properties they were sent with, and their answer link stops working
(an old link must not create a fresh, identified answer). Their timelines are deleted.
Contact imports older than the cutoff are deleted with their uploaded file and error report.
Contacts themselves are the company's address book, not aged out: erasing a person is the
per-person erasure's job.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from companies.models import Company
from companies.retention import BATCH_SIZE, in_batches
from surveys.models import ContactImport, ImportStatus, Invitation, InvitationEvent

# Small: each import row deletes two files from storage.
IMPORT_BATCH_SIZE = 20


def invitations_strip_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Clear the properties of invitations created before ``cutoff`` and expire their links;
    returns how many changed. Invitations not sent yet are left alone."""
    now = timezone.now()
    rows = (
        Invitation.objects.for_company(company)
        .filter(created_at__lt=cutoff)
        .exclude(status__in=["scheduled", "queued", "sending"])
        .filter(~Q(properties={}) | Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    )

    def strip(pks: list[int]) -> None:
        Invitation.objects.for_company(company).filter(pk__in=pks).update(
            properties={}, expires_at=now
        )

    return in_batches(rows, strip, batch_size=batch_size)


def invitation_events_delete_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Delete invitation timeline entries from before ``cutoff``; returns how many."""
    rows = InvitationEvent.objects.for_company(company).filter(occurred_at__lt=cutoff)

    def delete(pks: list[int]) -> None:
        InvitationEvent.objects.for_company(company).filter(pk__in=pks).delete()

    return in_batches(rows, delete, batch_size=batch_size)


def contact_imports_delete_before(
    *, company: Company, cutoff: datetime, batch_size: int = IMPORT_BATCH_SIZE
) -> int:
    """Delete finished contact imports from before ``cutoff`` with their files in storage."""
    rows = (
        ContactImport.objects.for_company(company)
        .filter(created_at__lt=cutoff)
        .filter(status__in=[ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.PENDING])
    )

    def delete(pks: list[int]) -> None:
        imports = ContactImport.objects.for_company(company).filter(pk__in=pks)
        # Files first: if a storage call fails, the row stays and tomorrow's run retries.
        for item in imports:
            for stored in (item.file, item.error_report):
                if stored.name:
                    stored.delete(save=False)
        imports.delete()

    return in_batches(rows, delete, batch_size=batch_size)
