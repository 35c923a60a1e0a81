from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from companies.models import role_at_least
from companies.selectors import memberships_of_user
from companies.zones import zone_label


def tenancy(request: HttpRequest) -> dict[str, Any]:
    """The current company, the user's role in it and their other companies (the switcher)."""
    company = getattr(request, "company", None)
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)

    def can(role: str) -> bool:
        return membership is not None and role_at_least(membership.role, role)

    return {
        "company": company,
        "membership": membership,
        "my_memberships": (
            memberships_of_user(user=user) if user is not None and user.is_authenticated else []
        ),
        # Shown once per page: which zone the page's times are in.
        "zone_label": zone_label(company.time_zone, full=True) if company is not None else "",
        "can_admin": can("admin"),
        "can_manage": can("manager"),
        "can_work_inbox": can("agent"),
    }
