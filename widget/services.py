"""Writes for the widget: its settings, and deciding, recording and dismissing a showing.

The server decides whether to show (one request: ``widget_decide``) so that a company changes
its rules without touching its site. An answer is an ordinary response on the "web widget"
channel (``responses.services.response_record``): alerts, follow-ups, webhooks, dashboards
and ``/v1/survey_responses`` see it like any other.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.models import Company
from companies.text import is_storable
from responses.models import Response, ResponseChannel
from responses.services import link_secret, response_record
from surveys.models import Contact, Survey
from surveys.selectors import survey_language, survey_text
from surveys.services.contacts import contact_upsert
from widget.models import WidgetSettings, WidgetView, new_publishable_key
from widget.selectors import (
    widget_contact_find,
    widget_contact_resting,
    widget_key_cache_clear,
    widget_view_for_ticket,
    widget_visitor_resting,
)

MAX_ORIGINS = 20
MAX_URL_RULES = 20
MAX_RULE_CHARS = 200
MAX_PROPERTIES = 50
MAX_PROPERTY_CHARS = 500
PAGE_URL_PROPERTY = "page_url"
TEXT_KEYS = ("question", "why_promoter", "why_passive", "why_detractor", "thanks")
_ORIGIN_RE = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")


# --- Settings ----------------------------------------------------------------------------------


def widget_settings_for(*, company: Company, survey: Survey) -> WidgetSettings:
    """The survey's widget settings, created (off) on first use."""
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    widget, _created = WidgetSettings.objects.for_company(company).get_or_create(
        company=company, survey=survey
    )
    return widget


def origins_clean(lines: list[str]) -> list[str]:
    """``scheme://host[:port]`` origins, lower-cased, without a path; refuses anything else."""
    origins: list[str] = []
    bad: list[str] = []
    for line in lines:
        value = line.strip().rstrip("/").lower()
        if not value:
            continue
        if not _ORIGIN_RE.match(value):
            bad.append(line.strip())
        elif value not in origins:
            origins.append(value)
    if bad:
        raise ValidationError(
            {
                "allowed_origins": [
                    _("Not an origin (like https://app.example.com): %(bad)s")
                    % {"bad": ", ".join(bad)}
                ]
            }
        )
    if len(origins) > MAX_ORIGINS:
        raise ValidationError(
            {"allowed_origins": [_("At most %(n)d origins.") % {"n": MAX_ORIGINS}]}
        )
    return origins


def url_rules_clean(lines: list[str], *, field_name: str) -> list[str]:
    rules = [line.strip() for line in lines if line.strip()]
    if len(rules) > MAX_URL_RULES or any(len(rule) > MAX_RULE_CHARS for rule in rules):
        raise ValidationError(
            {
                field_name: [
                    _("At most %(n)d rules of up to %(chars)d characters each.")
                    % {"n": MAX_URL_RULES, "chars": MAX_RULE_CHARS}
                ]
            }
        )
    return list(dict.fromkeys(rules))


WIDGET_EDITABLE_FIELDS = frozenset(
    {
        "enabled",
        "allowed_origins",
        "sample_percent",
        "delay_seconds",
        "min_days_since_created",
        "url_contains",
        "url_not_contains",
        "dismissal_cooldown_days",
        "anonymous_cooldown_days",
        "verify_identity",
    }
)


def widget_settings_update(*, company: Company, survey: Survey, **fields: Any) -> WidgetSettings:
    unknown = set(fields) - WIDGET_EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    widget = widget_settings_for(company=company, survey=survey)
    before = snapshot(widget, WIDGET_EDITABLE_FIELDS)
    if "allowed_origins" in fields:
        fields["allowed_origins"] = origins_clean(fields["allowed_origins"])
    for name in ("url_contains", "url_not_contains"):
        if name in fields:
            fields[name] = url_rules_clean(fields[name], field_name=name)
    for name, value in fields.items():
        setattr(widget, name, value)
    # Constraints are the database's (the key's uniqueness spans companies).
    widget.full_clean(
        exclude=["company", "survey"], validate_unique=False, validate_constraints=False
    )
    with transaction.atomic():
        widget.save()
        changes = changes_between(before, snapshot(widget, WIDGET_EDITABLE_FIELDS))
        if changes:
            _audit_widget(company, survey, AuditAction.WIDGET_SETTINGS_UPDATED, changes)
    widget_key_cache_clear()
    return widget


def _audit_widget(
    company: Company, survey: Survey, action: str, changes: dict[str, list[Any]] | None = None
) -> None:
    # Named by its survey: the settings row has no id of its own a person knows.
    audit_record(
        company=company,
        action=action,
        target=survey,
        target_type="widgetsettings",
        changes=changes,
    )


def widget_key_rotate(*, company: Company, survey: Survey) -> WidgetSettings:
    """A new publishable key: pages still carrying the old one get nothing from then on."""
    widget = widget_settings_for(company=company, survey=survey)
    widget.publishable_key = new_publishable_key()
    with transaction.atomic():
        widget.save(update_fields=["publishable_key", "updated_at"])
        _audit_widget(company, survey, AuditAction.WIDGET_KEY_ROTATED)
    widget_key_cache_clear()
    return widget


# --- Identity ----------------------------------------------------------------------------------


def identity_signature(*, company: Company, identity: str) -> str:
    """What the company's back end signs an identified widget call with:
    ``HMAC-SHA256(key=the company's link secret, message=external id if given, else the email
    trimmed and lower-cased)``, hex. The same secret signs web links."""
    return hmac.new(
        link_secret(company=company).encode(), identity.encode(), hashlib.sha256
    ).hexdigest()


def _signed_identity(email: str | None, external_id: str | None) -> str:
    return external_id or (email or "").strip().lower()


# --- Deciding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """What the page tells us, already type-checked by the view (strings are storable)."""

    visitor: str  # the browser's random id (first-party localStorage on the host page)
    page_url: str = ""
    page_language: str = ""
    email: str | None = None
    external_id: str | None = None
    name: str | None = None
    created_at: datetime | None = None
    locale: str | None = None
    signature: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def identified(self) -> bool:
        return bool(self.email or self.external_id)


class Refused(Exception):
    """The call is refused (not merely "don't show"): a missing or bad signature."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Decision:
    show: bool
    reason: str
    ticket: str = ""
    language: str = ""
    delay_seconds: int = 0
    texts: dict[str, str] = field(default_factory=dict)
    accent: str = ""
    dismiss_days: int = 0
    answer_days: int = 0


def visitor_hash(visitor: str) -> str:
    return hashlib.sha256(f"widget-visitor:{visitor}".encode()).hexdigest()


def _ticket_hash(ticket: str) -> str:
    return hashlib.sha256(f"widget-ticket:{ticket}".encode()).hexdigest()


def _sampled_in(widget: WidgetSettings, who: str) -> bool:
    """The same person is always in or always out (reloading does not re-roll)."""
    if widget.sample_percent >= 100:
        return True
    digest = hashlib.sha256(f"{widget.survey.public_id}:{who}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < widget.sample_percent


def _url_allowed(widget: WidgetSettings, url: str) -> bool:
    if widget.url_contains and not any(rule in url for rule in widget.url_contains):
        return False
    return not any(rule in url for rule in widget.url_not_contains)


def _language_for(survey: Survey, caller: Caller, contact: Contact | None) -> str:
    for asked in (caller.locale, contact.language if contact else None, caller.page_language):
        code = (asked or "").lower().replace("_", "-").split("-")[0]
        if code in {"en", "ru", "kk"}:
            return code
    return survey_language(survey=survey, language=None)


def widget_texts(*, survey: Survey, language: str) -> dict[str, str]:
    """The survey's wording in ``language`` and the widget's own labels in it too."""
    texts = {
        key: survey_text(survey=survey, company=survey.company, language=language, key=key)
        for key in TEXT_KEYS
    }
    with override(language):
        texts.update(
            low=_("Not at all likely"),
            high=_("Extremely likely"),
            why=_("Tell us why (optional)"),
            send=_("Send"),
            close=_("Close the survey"),
            failed=_("Your answer was not saved. Please try again."),
        )
    return texts


def _accent(survey: Survey) -> str:
    accent = survey.accent_color or ""
    return accent if re.fullmatch(r"#[0-9a-fA-F]{6}", accent) else "#4f46e5"


def widget_decide(
    *, widget: WidgetSettings, caller: Caller, now: datetime | None = None
) -> Decision:
    """Whether to show the survey to this caller now; when so, a ticket for the answer.

    Refuses (``Refused``) an identified call without a valid signature when the widget
    requires signed identities. The rules, in order: the page address, the sample, "not
    before N days since sign-up", then the person's rest (throttle across channels,
    dismissal cooldown; anonymous visitors: their own cooldown)."""
    now = now or timezone.now()
    company, survey = widget.company, widget.survey
    if caller.identified and widget.verify_identity:
        expected = identity_signature(
            company=company, identity=_signed_identity(caller.email, caller.external_id)
        )
        if not caller.signature or not hmac.compare_digest(expected, caller.signature.lower()):
            raise Refused("signature")
    refusal = _rules_refusal(widget, caller, now)
    if refusal:
        return Decision(show=False, reason=refusal)
    contact: Contact | None = None
    v_hash = visitor_hash(caller.visitor)
    if caller.identified:
        contact = widget_contact_find(
            company=company, email=caller.email, external_id=caller.external_id
        )
        if contact is not None and widget_contact_resting(
            company=company, widget=widget, contact=contact, now=now
        ):
            return Decision(show=False, reason="throttled")
        if contact is None or _contact_differs(contact, caller):
            contact = _contact_upsert(company, caller) or contact
        if contact is None:
            return Decision(show=False, reason="identity")
    elif widget_visitor_resting(company=company, widget=widget, visitor_hash=v_hash, now=now):
        return Decision(show=False, reason="throttled")
    ticket = secrets.token_urlsafe(24)
    language = _language_for(survey, caller, contact)
    properties = dict(caller.properties)
    if caller.page_url:
        properties[PAGE_URL_PROPERTY] = caller.page_url
    WidgetView.objects.create(
        company=company,
        survey=survey,
        ticket_hash=_ticket_hash(ticket),
        contact=contact,
        visitor_hash=v_hash,
        page_url=caller.page_url,
        language=language,
        properties=properties,
        shown_at=now,
    )
    return Decision(
        show=True,
        reason="",
        ticket=ticket,
        language=language,
        delay_seconds=widget.delay_seconds,
        texts=widget_texts(survey=survey, language=language),
        accent=_accent(survey),
        dismiss_days=widget.dismissal_cooldown_days,
        answer_days=widget.anonymous_cooldown_days,
    )


def _rules_refusal(widget: WidgetSettings, caller: Caller, now: datetime) -> str:
    """Why the page, the sample or the person's age rule this call out; "" when they don't."""
    if not _url_allowed(widget, caller.page_url):
        return "url"
    who = _signed_identity(caller.email, caller.external_id) or f"v:{caller.visitor}"
    if not _sampled_in(widget, who):
        return "sample"
    if (
        caller.identified
        and caller.created_at is not None
        and widget.min_days_since_created
        and now - caller.created_at < timedelta(days=widget.min_days_since_created)
    ):
        return "too_new"
    return ""


def _contact_differs(contact: Contact, caller: Caller) -> bool:
    """Whether the page says something new about a known contact (else no write at all)."""
    if caller.name and caller.name != contact.name:
        return True
    if caller.email and caller.email != contact.email:
        return True
    if caller.external_id and caller.external_id != contact.external_id:
        return True
    known = contact.properties or {}
    return any(known.get(key) != value for key, value in caller.properties.items())


def _contact_upsert(company: Company, caller: Caller) -> Contact | None:
    """The identified person becomes a contact, or updates theirs (name, properties)."""
    try:
        contact, _created = contact_upsert(
            company=company,
            email=caller.email,
            external_id=caller.external_id,
            name=caller.name,
            properties=caller.properties or None,
        )
    except ValidationError:
        return None
    return contact


# --- Answering ---------------------------------------------------------------------------------


class UnknownTicket(Exception):
    """No showing of this survey carries this ticket."""


def _view(widget: WidgetSettings, ticket: str) -> WidgetView:
    if not ticket or len(ticket) > 64:
        raise UnknownTicket
    view = widget_view_for_ticket(
        company=widget.company, survey=widget.survey, ticket_hash=_ticket_hash(ticket)
    )
    if view is None:
        raise UnknownTicket
    return view


def widget_answer(
    *, widget: WidgetSettings, ticket: str, score: object, comment: str | None = None
) -> Response:
    """Record (or update: the comment comes after the score) the answer of one showing."""
    view = _view(widget, ticket)
    with transaction.atomic():
        response = response_record(
            invitation=None,
            survey=widget.survey,
            score=score,  # type: ignore[arg-type]  # checked there
            comment=comment,
            channel=ResponseChannel.WIDGET,
            language=view.language,
            contact=view.contact,
            browser_key=view.ticket_hash,
            properties=view.properties,
            first_answer=view.answered_at is None,  # the score; the comment comes after
        )
        if view.answered_at is None:
            WidgetView.objects.for_company(widget.company).filter(pk=view.pk).update(
                answered_at=timezone.now()
            )
    return response


def widget_dismiss(*, widget: WidgetSettings, ticket: str) -> None:
    """The person closed the question: declined, and not asked again for the cooldown."""
    view = _view(widget, ticket)
    WidgetView.objects.for_company(widget.company).filter(
        pk=view.pk, dismissed_at__isnull=True
    ).update(dismissed_at=timezone.now())


def properties_clean(raw: object) -> dict[str, Any]:
    """The page's properties: a flat object of short scalars (others refused)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_PROPERTIES:
        raise ValidationError({"properties": [_("Properties must be a small flat object.")]})
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key or len(key) > 100 or not is_storable(key):
            raise ValidationError({"properties": [_("Properties must be a small flat object.")]})
        if isinstance(value, str):
            if len(value) > MAX_PROPERTY_CHARS or not is_storable(value):
                raise ValidationError(
                    {"properties": [_("Properties must be a small flat object.")]}
                )
        elif value is not None and not isinstance(value, bool | int | float):
            raise ValidationError({"properties": [_("Properties must be a small flat object.")]})
        cleaned[key] = value
    return cleaned


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""
