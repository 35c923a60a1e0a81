"""The inbox link of the main navigation, with its count (one aggregate query per page)."""

from __future__ import annotations

from typing import Any

from django import template

from responses.followups_selectors import inbox_counts

register = template.Library()


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
