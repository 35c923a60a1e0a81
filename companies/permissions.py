"""Role requirements of company views, read by the tenancy middleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from companies.models import Role

F = TypeVar("F", bound=Callable[..., Any])

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def company_view(role: str = Role.VIEWER, *, write_role: str | None = None) -> Callable[[F], F]:
    """Declare the least role a company page needs: ``role`` to read, ``write_role`` to post.

    Every view under ``/c/<company_slug>/`` must carry this (function views) or set
    ``required_role`` / ``required_write_role`` (class views); an undeclared one is refused.
    """

    def decorate(view: F) -> F:
        view.required_role = role  # type: ignore[attr-defined]
        view.required_write_role = write_role or role  # type: ignore[attr-defined]
        return view

    return decorate


def declared_roles(view: Any) -> tuple[str, str] | None:
    target = getattr(view, "view_class", view)
    role = getattr(target, "required_role", None) or getattr(view, "required_role", None)
    if role is None:
        return None
    write_role = (
        getattr(target, "required_write_role", None)
        or getattr(view, "required_write_role", None)
        or role
    )
    return role, write_role


def role_needed(view: Any, method: str) -> str | None:
    roles = declared_roles(view)
    if roles is None:
        return None
    return roles[0] if method in SAFE_METHODS else roles[1]
