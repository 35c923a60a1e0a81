"""The sending funnel: invitations sent → delivered → opened → answered, per channel.

One aggregate query over the invitations sent in the period (company time zone); the
response rate of a channel is answered / sent. Web-link answers have no invitation and are
not part of a funnel.
"""

from __future__ import annotations

from datetime import date
from typing import TypedDict

from django.db.models import Count, Q

from companies.models import Company
from dashboards.selectors import day_bounds
from surveys.models import Invitation, Survey


class FunnelRow(TypedDict):
    channel: str
    sent: int
    delivered: int
    opened: int
    answered: int
    response_rate: float | None  # percent of sent


def funnel_for(
    *,
    company: Company,
    survey: Survey | None = None,
    since: date | None = None,
    until: date | None = None,
    channel: str | None = None,
) -> list[FunnelRow]:
    """Per channel, busiest first, for the invitations sent from ``since`` to ``until``
    (inclusive days in the company's time zone; None: no bound)."""
    rows = Invitation.objects.for_company(company).filter(sent_at__isnull=False)
    if survey is not None:
        rows = rows.filter(survey=survey)
    if channel:
        rows = rows.filter(channel=channel)
    if since is not None:
        rows = rows.filter(sent_at__gte=day_bounds(company, since, since)[0])
    if until is not None:
        rows = rows.filter(sent_at__lt=day_bounds(company, until, until)[1])
    counted = (
        rows.values("channel")
        .annotate(
            sent=Count("id"),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            answered=Count("id", filter=Q(answered_at__isnull=False)),
        )
        .order_by("-sent", "channel")
    )
    return [
        {
            "channel": row["channel"],
            "sent": row["sent"],
            # A provider that reports no delivery (SMS without callbacks, some SMTP) still
            # delivered what was opened or answered.
            "delivered": max(row["delivered"], row["opened"], row["answered"]),
            "opened": max(row["opened"], row["answered"]),
            "answered": row["answered"],
            "response_rate": 100.0 * row["answered"] / row["sent"] if row["sent"] else None,
        }
        for row in counted
    ]
