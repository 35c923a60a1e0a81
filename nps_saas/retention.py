"""Data retention: a company's personal data older than its chosen number of months is
anonymised or deleted, by a daily job (``nps_saas.retention_run_due``).

Each app owns what ages out of its tables (``<app>/retention.py``); this module, which may
import every app, runs them in order for one company and records the run (``RetentionRun``:
counts only). ``COVERED`` and ``EXEMPT`` name every model with a timestamp and say what
retention does with it or why it leaves it alone; a test fails when a new model is in
neither. What is kept and why is in the README ("Data retention").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from companies.models import Company, RetentionRun
from companies.retention import retention_cutoff, retention_run_finish, retention_run_start
from delighted_compat.retention import (
    delighted_imports_delete_before,
    delighted_responses_strip_before,
)
from notifications.retention import deliveries_delete_before, webhook_messages_delete_before
from responses.retention import (
    alert_firings_forget_before,
    followups_delete_before,
    responses_anonymise_before,
)
from surveys.retention import (
    contact_imports_delete_before,
    invitation_events_delete_before,
    invitations_strip_before,
)
from widget.retention import widget_views_delete_before

logger = logging.getLogger(__name__)


Step = Callable[..., int]

# In this order: answers are cut from their invitations and contacts before anything else, and
# the ledger goes last (an invitation points at its delivery).
STEPS: tuple[tuple[str, Step], ...] = (
    ("responses_anonymised", responses_anonymise_before),
    ("delighted_responses_stripped", delighted_responses_strip_before),
    ("followups_deleted", followups_delete_before),
    ("alert_firings_forgotten", alert_firings_forget_before),
    ("invitations_stripped", invitations_strip_before),
    ("invitation_events_deleted", invitation_events_delete_before),
    ("contact_imports_deleted", contact_imports_delete_before),
    ("delighted_imports_deleted", delighted_imports_delete_before),
    ("widget_views_deleted", widget_views_delete_before),
    ("webhook_messages_deleted", webhook_messages_delete_before),
    ("deliveries_deleted", deliveries_delete_before),
)

# Models retention acts on (app_label.ModelName → what happens to rows older than the cutoff).
COVERED: dict[str, str] = {
    "responses.Response": "anonymised: score, channel, language and date kept",
    "responses.Followup": "deleted with its thread",
    "responses.FollowupEvent": "deleted with its follow-up",
    "responses.AlertFiring": "kept (an alert never fires twice), emailed addresses cleared",
    "delighted_compat.DelightedResponse": "notes and Delighted person id cleared",
    "surveys.Invitation": "kept for the funnel and throttle, properties cleared, link expired",
    "surveys.InvitationEvent": "deleted",
    "surveys.ContactImport": "deleted with its file and error report",
    "delighted_compat.DelightedImport": "deleted with its file and error report",
    "widget.WidgetView": "deleted",
    "notifications.WebhookMessage": "deleted when finished, with its attempts",
    "notifications.WebhookAttempt": "deleted with its message",
    "notifications.Delivery": "deleted when finished, with its provider events",
    "notifications.DeliveryEvent": "deleted with its delivery",
}

# Models with a timestamp that retention leaves alone, and why.
EXEMPT: dict[str, str] = {
    "companies.Company": "the tenant itself",
    "companies.User": "people who sign in; their accounts are theirs to close",
    "companies.Membership": "current teammates",
    "companies.TeamInvite": "teammates' invitations, not respondents' data",
    "companies.ApiKey": "configuration",
    "companies.RetentionRun": "counts only, no personal data",
    "surveys.Survey": "configuration",
    "surveys.Contact": "the company's address book; a person is erased on request, not by age",
    "surveys.Campaign": "audience filters and counts, no personal data",
    "surveys.AutopilotProgram": "configuration",
    "surveys.AutopilotMember": "current members of a recurring survey (address book)",
    "surveys.AutopilotJoin": "audience filters, no personal data",
    "responses.AlertRule": "configuration",
    "notifications.Suppression": "an unsubscribe or bounce must be honoured for ever",
    "notifications.WebhookEndpoint": "configuration",
    "notifications.OutboxMessage": "the embedded default's development outbox, never in production",
    "dashboards.RollupDelta": "folded into the rollup within seconds, then deleted",
    "dashboards.DashboardSettings": "configuration",
    "dashboards.DigestSubscription": "teammates' settings",
    "dashboards.DigestAddress": "configuration (addresses the company chose to send digests to)",
    "delighted_compat.ApiKeySurvey": "configuration",
    "delighted_compat.DefaultApiSurvey": "configuration",
    "widget.WidgetSettings": "configuration",
    "audit.AuditEntry": (
        "the security trail, kept for the company's life: it names members (email, IP) and "
        "what changed, never respondents' data (README, Data retention)"
    ),
    "privacy.PersonalDataRequest": (
        "the proof that an export or erasure was done: who, when, the kind of identifier and "
        "counts, no personal data of the person"
    ),
    "sso.SsoConnection": "configuration",
    "sso.SsoDomain": "configuration (the company's email domains)",
}


def retention_apply(*, company: Company, now: datetime | None = None) -> RetentionRun | None:
    """Run the company's retention policy once; returns the run, or None when it has none.

    Safe to run twice at once and to run again after a crash: every step works in short
    batches that skip rows another run holds, and a row once done no longer matches.
    """
    months = company.retention_months
    if not months:
        return None
    now = now or timezone.now()
    cutoff = retention_cutoff(now=now, months=months)
    run = retention_run_start(company=company, months=months, cutoff=cutoff)
    counts = {kind: step(company=company, cutoff=cutoff) for kind, step in STEPS}
    logger.info("retention for company %s up to %s: %s", company.pk, cutoff.isoformat(), counts)
    return retention_run_finish(company=company, run=run, counts=counts, finished_at=timezone.now())


def companies_with_retention() -> list[int]:
    """Ids of the companies that set a retention period (``Company`` is not tenant data)."""
    return list(
        Company.objects.filter(retention_months__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
