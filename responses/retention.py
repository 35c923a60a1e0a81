"""Data retention of the responses app: services run by nps_saas/retention.py.

An answer older than the cutoff stays, anonymously: its survey, score, category, channel,
language and date keep every dashboard figure and rollup right (they count scores, never
people). What could name or describe a person goes: the comment, the extra answers, the
property snapshots, the links to the contact and the invitation (which names the contact),
the browser key. Follow-up threads (notes, replies, the customer's answers by email) opened
before the cutoff are deleted with their events; the alert ledger keeps its rows (an alert
must not fire twice) but forgets which addresses it emailed.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from companies.models import Company
from companies.retention import BATCH_SIZE, in_batches
from responses.models import AlertFiring, Followup, FollowupEvent, Response

# An answer still holding any of these is not anonymised yet.
_IDENTIFYING = (
    ~Q(comment="")
    | ~Q(extra_answers={})
    | ~Q(contact_properties={})
    | ~Q(invitation_properties={})
    | Q(contact__isnull=False)
    | Q(invitation__isnull=False)
    | Q(browser_key__isnull=False)
)


def responses_anonymise_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Anonymise the company's answers created before ``cutoff``; returns how many changed."""
    rows = Response.objects.for_company(company).filter(_IDENTIFYING, created_at__lt=cutoff)

    def anonymise(pks: list[int]) -> None:
        # A queryset update on purpose: the score does not change, so no rollup delta, no
        # webhook event and no alert is owed (responses/services.py would owe them).
        Response.objects.for_company(company).filter(pk__in=pks).update(
            comment="",
            extra_answers={},
            contact_properties={},
            invitation_properties={},
            contact=None,
            invitation=None,
            browser_key=None,
            updated_at=timezone.now(),
        )

    return in_batches(rows, anonymise, batch_size=batch_size)


def followups_delete_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Delete follow-ups opened before ``cutoff`` with their threads; returns how many."""
    rows = Followup.objects.for_company(company).filter(created_at__lt=cutoff)

    def delete(pks: list[int]) -> None:
        # Children first, each statement restricted to the company (no cascade by join).
        FollowupEvent.objects.for_company(company).filter(followup_id__in=pks).delete()
        Followup.objects.for_company(company).filter(pk__in=pks).delete()

    return in_batches(rows, delete, batch_size=batch_size)


def alert_firings_forget_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Clear the emailed addresses of alerts fired before ``cutoff``; returns how many."""
    rows = (
        AlertFiring.objects.for_company(company)
        .filter(fired_at__lt=cutoff)
        .exclude(deliveries={})
        # Emails still owed keep their ledger until they are sent.
        .exclude(
            email_status__in=[AlertFiring.EmailStatus.PENDING, AlertFiring.EmailStatus.SENDING]
        )
    )

    def forget(pks: list[int]) -> None:
        AlertFiring.objects.for_company(company).filter(pk__in=pks).update(deliveries={})

    return in_batches(rows, forget, batch_size=batch_size)
