"""The building blocks of data retention, below every app that has data to age out.

Each app exposes its own ``<app>/retention.py`` services (what ages out of its tables and
how); ``nps_saas/retention.py`` runs them in order for a company. They all walk their rows
with :func:`in_batches`: short transactions of at most ``batch_size`` rows, locked with
``SKIP LOCKED`` so that two runs at once share the work instead of waiting on each other,
and idempotent because a row once done no longer matches the query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from dateutil.relativedelta import relativedelta
from django.db import models, transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from companies.models import Company, RetentionRun
from companies.tenancy import TenantQuerySet

_M = TypeVar("_M", bound=models.Model)

# Rows per transaction: small enough that no lock is held for long on a busy table, large
# enough that a year of a big company's answers takes minutes, not hours.
BATCH_SIZE = 500


# What a run counts, by the keys nps_saas/retention.py records, as the settings page names them.
RETENTION_KINDS: dict[str, Promise] = {
    "responses_anonymised": _("answers anonymised"),
    "delighted_responses_stripped": _("imported Delighted notes cleared"),
    "followups_deleted": _("follow-up threads deleted"),
    "alert_firings_forgotten": _("alert recipients forgotten"),
    "invitations_stripped": _("invitations cleared"),
    "invitation_events_deleted": _("invitation events deleted"),
    "contact_imports_deleted": _("contact imports deleted"),
    "delighted_imports_deleted": _("Delighted imports deleted"),
    "widget_views_deleted": _("widget views deleted"),
    "webhook_messages_deleted": _("webhook and Slack messages deleted"),
    "deliveries_deleted": _("delivery log entries deleted"),
}


def retention_cutoff(*, now: datetime, months: int) -> datetime:
    """``now`` minus calendar months (31 March minus one month is 28/29 February)."""
    cutoff: datetime = now - relativedelta(months=months)
    return cutoff


def in_batches(
    rows: TenantQuerySet[_M],
    action: Callable[[list[int]], object],
    *,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Apply ``action`` to the primary keys of ``rows`` a batch at a time; returns how many.

    ``rows`` must stop matching a row once ``action`` has done it (a deleted row, a cleared
    field); the walk also moves forward by primary key, so it ends even if one does not.
    Each batch is its own transaction: the rows are locked (``SKIP LOCKED``: rows another run
    holds are left to it) and acted on before the next batch is read.
    """
    done = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            pks = list(
                rows.filter(pk__gt=last_pk)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not pks:
                return done
            action(pks)
        done += len(pks)
        last_pk = pks[-1]


def retention_run_start(*, company: Company, months: int, cutoff: datetime) -> RetentionRun:
    return RetentionRun.objects.create(company=company, months=months, cutoff=cutoff)


def retention_run_finish(
    *, company: Company, run: RetentionRun, counts: dict[str, int], finished_at: datetime
) -> RetentionRun:
    run.counts = {kind: count for kind, count in counts.items() if count}
    run.finished_at = finished_at
    run.save(update_fields=["counts", "finished_at"])
    return run


def retention_run_counts(*, run: RetentionRun) -> list[tuple[str, int]]:
    """A run's counts as (label, count) in the order of ``RETENTION_KINDS``."""
    return [
        (str(label), int(run.counts[kind]))
        for kind, label in RETENTION_KINDS.items()
        if run.counts.get(kind)
    ]


def retention_run_latest(*, company: Company) -> RetentionRun | None:
    """The company's last finished run (the settings page shows it)."""
    return (
        RetentionRun.objects.for_company(company)
        .filter(finished_at__isnull=False)
        .order_by("-started_at", "-pk")
        .first()
    )
