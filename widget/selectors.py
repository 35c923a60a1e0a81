"""Reads for the widget: its settings by publishable key, and who was asked lately."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import Combinable

from companies import rls
from companies.models import Company
from surveys.models import Contact, Survey, SurveyStatus
from surveys.services.invitations import throttle_querysets
from widget.models import WidgetSettings, WidgetView

# Every call of every visitor starts with the key's widget: each process keeps what it read
# for a moment (a three-table read that was a third of a call's time). Saved settings clear
# this process's copies at once; other processes see a change within this many seconds.
KEY_CACHE_SECONDS = 2.0
KEY_CACHE_SIZE = 10_000
_by_key: dict[str, tuple[float, WidgetSettings | None]] = {}


def widget_key_cache_clear() -> None:
    _by_key.clear()


def widget_for_key(*, key: str) -> WidgetSettings | None:
    """The enabled widget of an active survey that ``key`` names, else None (at most
    ``KEY_CACHE_SECONDS`` old).

    The publishable key is the widget's only way in: it names its company (as an API key
    does), so this one lookup crosses companies; everything after it is scoped."""
    if not key or len(key) > 64:
        return None
    now = time.monotonic()
    cached = _by_key.get(key)
    if cached is not None and cached[0] > now:
        widget = cached[1]
    else:
        widget = _widget_for_key(key)
        if len(_by_key) >= KEY_CACHE_SIZE:
            _by_key.clear()
        _by_key[key] = (now + KEY_CACHE_SECONDS, widget)
    if widget is not None:
        # The widget's choke point for row-level security, cached lookup or not: the rest of
        # the request is the key's company's.
        rls.activate_company(widget.company_id)
    return widget


def _widget_for_key(key: str) -> WidgetSettings | None:
    widget = (
        WidgetSettings.objects.unscoped(reason="a publishable key names its company")
        .select_related("survey__company")
        .filter(publishable_key=key, enabled=True)
        .order_by()[:1]
    )
    found = next(iter(widget), None)
    if found is None or found.survey.status != SurveyStatus.ACTIVE:
        return None
    found.company = found.survey.company  # the same row: one join fewer
    return found


def widget_settings_get(*, company: Company, survey: Survey) -> WidgetSettings | None:
    return WidgetSettings.objects.for_company(company).filter(survey=survey).first()


def widget_contact_find(
    *, company: Company, email: str | None, external_id: str | None
) -> Contact | None:
    """The contact the page identifies: by external id first, then by email (as upserts)."""
    contacts = Contact.objects.for_company(company)
    if external_id:
        contact = contacts.filter(external_id=external_id).first()
        if contact is not None:
            return contact
    if email:
        return contacts.filter(email=email.strip().lower()).first()
    return None


def widget_contact_resting(
    *, company: Company, widget: WidgetSettings, contact: Contact, now: datetime
) -> bool:
    """Whether ``contact`` must not be asked now: surveyed by any channel (email, SMS, a
    link, the widget) within the survey's throttle window, or dismissed the widget within
    its dismissal cooldown. One query (subqueries; a new person is not asked at all)."""
    resting = _resting(company, widget, now)
    if isinstance(resting, Value):
        return False
    return bool(
        Contact.objects.for_company(company)
        .filter(pk=contact.pk)
        .annotate(resting=resting)
        .values_list("resting", flat=True)
        .first()
    )


def _resting(company: Company, widget: WidgetSettings, now: datetime) -> Combinable | Q | Value:
    survey = widget.survey
    parts: list[Exists] = []
    throttle = throttle_querysets(company=company, survey=survey, at=now)
    if throttle is not None:
        invited, answered = throttle
        parts.append(Exists(invited.filter(contact_id=OuterRef("pk"))))
        parts.append(Exists(answered.filter(pk=OuterRef("pk"))))
    # Answers of an anonymous survey carry no contact: their showings still do.
    rest = _rest(widget=widget, now=now, answered_days=survey.throttle_days)
    if rest is not None:
        views = WidgetView.objects.for_company(company).filter(survey=survey)
        parts.append(Exists(views.filter(rest, contact_id=OuterRef("pk"))))
    if not parts:
        return Value(False)
    combined: Combinable | Q = parts[0]
    for part in parts[1:]:
        combined = combined | part
    return ExpressionWrapper(combined, output_field=BooleanField())


def widget_visitor_resting(
    *, company: Company, widget: WidgetSettings, visitor_hash: str, now: datetime
) -> bool:
    """Whether an anonymous visitor must not be asked now (answered within the anonymous
    cooldown, or dismissed within the dismissal cooldown)."""
    views = WidgetView.objects.for_company(company).filter(
        survey=widget.survey, visitor_hash=visitor_hash
    )
    return _views_resting(
        views, widget=widget, now=now, answered_days=widget.anonymous_cooldown_days
    )


def _views_resting(
    views: QuerySet[WidgetView], *, widget: WidgetSettings, now: datetime, answered_days: int
) -> bool:
    rest = _rest(widget=widget, now=now, answered_days=answered_days)
    return rest is not None and views.filter(rest).exists()


def _rest(*, widget: WidgetSettings, now: datetime, answered_days: int) -> Q | None:
    """Showings that keep their person from being asked: answered within ``answered_days``
    or dismissed within the dismissal cooldown; None when neither applies."""
    rest: Q | None = None
    if answered_days:
        rest = Q(answered_at__gte=now - timedelta(days=answered_days))
    if widget.dismissal_cooldown_days:
        dismissed = Q(
            dismissed_at__gte=now - timedelta(days=widget.dismissal_cooldown_days),
            answered_at__isnull=True,
        )
        rest = dismissed if rest is None else rest | dismissed
    return rest


def widget_view_for_ticket(
    *, company: Company, survey: Survey, ticket_hash: str
) -> WidgetView | None:
    return (
        WidgetView.objects.for_company(company)
        .filter(survey=survey, ticket_hash=ticket_hash)
        .select_related("contact")
        .first()
    )
