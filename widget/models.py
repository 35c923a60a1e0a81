"""The website / in-app widget: per-survey settings and the record of each time it was shown.

The widget sits above ``responses`` (next to ``dashboards``): its answers are ordinary
responses on the "web widget" channel, recorded through ``responses.services``.
"""

from __future__ import annotations

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.tenancy import TenantModel

KEY_PREFIX = "wpk_"


def new_publishable_key() -> str:
    """A random publishable key (192 bits): it only names a survey's widget, it grants no
    API access, and it is meant to be seen in a web page's source."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


class WidgetSettings(TenantModel):
    """One survey's widget: who may embed it, and who sees it when.

    ``allowed_origins`` is a list of ``scheme://host[:port]``; ``url_contains`` /
    ``url_not_contains`` lists of substrings of the page's address.
    """

    survey = models.OneToOneField(
        "surveys.Survey",
        on_delete=models.CASCADE,
        related_name="widget_settings",
        verbose_name=_("Survey"),
    )
    enabled = models.BooleanField(_("widget on"), default=False)
    publishable_key = models.CharField(max_length=64, default=new_publishable_key, editable=False)
    allowed_origins = models.JSONField(_("Allowed sites"), default=list, blank=True)
    sample_percent = models.PositiveSmallIntegerField(
        # xgettext:no-python-format
        _("show to (% of visitors)"),
        default=100,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    delay_seconds = models.PositiveIntegerField(
        _("show after (seconds on the page)"), default=5, validators=[MaxValueValidator(3600)]
    )
    min_days_since_created = models.PositiveSmallIntegerField(
        _("not before (days since the user signed up)"),
        default=0,
        validators=[MaxValueValidator(3650)],
    )
    url_contains = models.JSONField(_("Page address contains"), default=list, blank=True)
    url_not_contains = models.JSONField(
        _("Page address does not contain"), default=list, blank=True
    )
    dismissal_cooldown_days = models.PositiveSmallIntegerField(
        _("after a dismissal, do not ask again within (days)"),
        default=14,
        validators=[MaxValueValidator(3650)],
    )
    anonymous_cooldown_days = models.PositiveSmallIntegerField(
        _("anonymous visitors: do not ask again within (days)"),
        default=90,
        validators=[MaxValueValidator(3650)],
    )
    verify_identity = models.BooleanField(_("require signed identities"), default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["publishable_key"], name="widget_publishable_key"),
            models.UniqueConstraint(fields=["company", "survey"], name="widget_one_per_survey"),
        ]

    def __str__(self) -> str:
        return f"widget of {self.survey_id}"


class WidgetView(TenantModel):
    """One time the widget was shown to someone: the ticket its answer or dismissal carries.

    ``ticket_hash`` is the SHA-256 of the random ticket given to the browser (never the
    ticket). ``contact`` is set for an identified person, ``visitor_hash`` (SHA-256 of the
    browser's random id) for an anonymous one.
    """

    survey = models.ForeignKey("surveys.Survey", on_delete=models.CASCADE, related_name="+")
    ticket_hash = models.CharField(max_length=64)
    contact = models.ForeignKey(
        "surveys.Contact", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    visitor_hash = models.CharField(max_length=64, blank=True)
    page_url = models.CharField(max_length=2000, blank=True)
    language = models.CharField(max_length=8, default="en")
    properties = models.JSONField(default=dict, blank=True)
    shown_at = models.DateTimeField(default=timezone.now)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "ticket_hash"], name="widget_view_ticket"),
        ]
        indexes = [
            models.Index(
                fields=["company", "survey", "contact", "shown_at"],
                name="widget_view_contact",
                condition=models.Q(contact__isnull=False),
            ),
            models.Index(
                fields=["company", "survey", "visitor_hash", "shown_at"],
                name="widget_view_visitor",
            ),
        ]

    def __str__(self) -> str:
        return f"widget view {self.pk}"
