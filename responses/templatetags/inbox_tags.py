"""The inbox link of the main navigation, with its count (one aggregate query per page)."""

from __future__ import annotations

from typing import Any

from django import template

from responses.followups_selectors import inbox_counts
from responses.models import FollowupStatus, ResolutionReason, rule_name_display

register = template.Library()
_STATUS_LABELS = dict(FollowupStatus.choices)
_RESOLUTION_LABELS = dict(ResolutionReason.choices)


@register.filter
def followup_status(value: str) -> str:
    """A status as the thread stores it ("waiting") in the reader's words."""
    return str(_STATUS_LABELS.get(value, value))


@register.filter
def rule_name(value: str) -> str:
    """The name of the rule an alert event recorded: the default rule's in the reader's
    language."""
    return rule_name_display(value)


@register.filter
def resolution_reason(value: str) -> str:
    """A resolution as the thread stores it ("contacted") in the reader's words."""
    return str(_RESOLUTION_LABELS.get(value, value))


@register.inclusion_tag("responses/inbox/_nav.html", takes_context=True)
def inbox_nav(context: template.Context) -> dict[str, Any]:
    """Open follow-ups that are the member's own or nobody's: what is waiting for them."""
    request = context.get("request")
    company = context.get("company")
    membership = context.get("membership")
    counts = inbox_counts(company=company, membership=membership) if company else {}
    return {
        "company": company,
        "request": request,
        "waiting": counts.get("mine", 0) + counts.get("unassigned", 0),
        "overdue": counts.get("overdue", 0),
    }
