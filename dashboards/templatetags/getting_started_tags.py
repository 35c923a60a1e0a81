"""The overview's "Getting started" card (one query per page, dashboards/getting_started.py)."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from dashboards.getting_started import getting_started_for

register = template.Library()


@register.inclusion_tag("dashboards/_getting_started.html", takes_context=True)
def getting_started(context: template.Context) -> dict[str, Any]:
    """The steps while the company has no responses; where to go next once it has."""
    company = context["company"]
    membership = context["membership"]
    return {
        "company": company,
        "csrf_token": context.get("csrf_token"),
        "gs": getting_started_for(company=company, membership=membership),
        # The embedded default keeps mail in /dev/outbox/: say where sent surveys go.
        "dev_outbox": settings.DEV_OUTBOX_ENABLED,
        "can_work_inbox": context.get("can_work_inbox"),
    }
