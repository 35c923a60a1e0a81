"""Rollups: answers per (company, survey, day in the company's time zone, channel, language, score).

How they stay exact (dashboards/rollups.py has the details):

* database triggers on ``responses_response`` (installed by this app's migrations, on
  PostgreSQL and on SQLite) append one ``RollupDelta`` row (+1 / −1) for every insert, score
  or channel change and delete, however it happens: the services, ``bulk_create``, a
  queryset ``update()``, a cascade from a deleted survey or company, raw SQL, COPY;
* a periodic task folds the deltas into ``Rollup`` (one upsert per key) and the week and month
  rows of ``RollupSpan``, and deletes them;
* reads add the pending deltas to the rollup in ONE statement (UNION ALL, one snapshot), so a
  figure is exact and current whether or not the fold has run.

Answers never update a shared counter row: a delta is an insert, so concurrent answers do not
queue behind one hot row; only the fold (one at a time) updates rollup rows.

Deltas and rollups reference surveys (and deltas their company) without a database foreign key
constraint: a cascade deleting a survey's responses writes −1 deltas for a survey that is gone
by commit time, and those must still land so the rollup nets to zero (rows at zero are pruned).
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id
from companies.tenancy import TenantModel


class Rollup(TenantModel):
    """Answers with ``score`` on ``day`` (company time zone, see RollupZone) per survey, channel
    and language (the three segment kinds served from here)."""

    survey = models.ForeignKey(
        "surveys.Survey", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    day = models.DateField()
    channel = models.CharField(max_length=16)
    language = models.CharField(max_length=8)
    score = models.PositiveSmallIntegerField()
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "survey", "day", "channel", "language", "score"],
                name="rollup_key_language",
            ),
        ]
        indexes = [models.Index(fields=["company", "day"], name="rollup_company_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.score}: {self.count}"


class RollupSpan(TenantModel):
    """The same counts per ISO week (``start`` a Monday) or calendar month (``start`` the 1st),
    kept by the fold beside the day rows, so a long period reads a few rows per week or month
    instead of one per day: a year is 52 weeks (plus the edge days), whatever the traffic."""

    class Span(models.TextChoices):
        WEEK = "week"
        MONTH = "month"

    survey = models.ForeignKey(
        "surveys.Survey", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    span = models.CharField(max_length=5, choices=Span.choices)
    start = models.DateField()
    channel = models.CharField(max_length=16)
    language = models.CharField(max_length=8)
    score = models.PositiveSmallIntegerField()
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "survey", "span", "start", "channel", "language", "score"],
                name="rollupspan_key",
            ),
        ]
        indexes = [
            models.Index(fields=["company", "span", "start"], name="rollupspan_company_start")
        ]

    def __str__(self) -> str:
        return f"{self.span} of {self.start} {self.channel} {self.score}: {self.count}"


class RollupDelta(TenantModel):
    """+1 / −1 for one answer's (survey, time, channel, score), written by a database trigger.

    ``created_at`` is the response's own timestamp: the fold turns it into a day in the
    company's time zone, so the trigger needs no time-zone arithmetic (SQLite has none).
    """

    company = models.ForeignKey(
        "companies.Company", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    survey = models.ForeignKey(
        "surveys.Survey", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    created_at = models.DateTimeField()
    channel = models.CharField(max_length=16)
    language = models.CharField(max_length=8)
    score = models.PositiveSmallIntegerField()
    delta = models.SmallIntegerField()
    # The answer's contact properties (its snapshot), for the segment properties' rollup.
    properties = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["company", "created_at"], name="rollupdelta_company_time")]

    def __str__(self) -> str:
        return f"{self.created_at} {self.channel} {self.score}: {self.delta:+d}"


class PropertyRollup(TenantModel):
    """Answers per value of a contact property a company segments by (``DashboardSettings.
    segment_properties``), per day, ISO week and month (``span``, ``start`` as in
    ``RollupSpan``), survey and channel. Only answers that have the property are counted: the
    answers without a value are the period's total less these."""

    survey = models.ForeignKey(
        "surveys.Survey", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    span = models.CharField(max_length=5)  # day, week or month
    start = models.DateField()
    channel = models.CharField(max_length=16)
    name = models.CharField(max_length=64)
    value = models.TextField()
    score = models.PositiveSmallIntegerField()
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "survey", "span", "start", "channel", "name", "value", "score"],
                name="propertyrollup_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["company", "name", "span", "start"], name="propertyrollup_company_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value} {self.span} of {self.start}: {self.count}"


class PropertyRollupBuilt(TenantModel):
    """A segment property whose ``PropertyRollup`` rows are counted (in ``time_zone``'s days).

    The fold builds a property the company marked and drops one it unmarked; until it is
    built, segments by it count live from the responses table.
    """

    company = models.ForeignKey("companies.Company", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    time_zone = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="propertyrollupbuilt_name")
        ]

    def __str__(self) -> str:
        return self.name


class RollupZone(TenantModel):
    """The time zone a company's ``Rollup`` days are in.

    When the company changes its time zone, the next fold finds the two differ and re-buckets
    the company's history from the responses table; until then reads count live.
    """

    company = models.OneToOneField(
        "companies.Company", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    time_zone = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.time_zone


class DashboardSettings(TenantModel):
    """A company's dashboard choices (admins edit them on the dashboard's settings page)."""

    company = models.OneToOneField(
        "companies.Company", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # A numeric contact property holding what a customer is worth (e.g. yearly spend): the
    # dashboard sums it over detractors and passives ("revenue at risk").
    revenue_property = models.CharField(_("Revenue property"), max_length=64, blank=True)
    # Contribute this company's NPS, anonymously, to the peer benchmark of its industry and
    # see that benchmark (median and quartiles, shown from PEER_MIN_COMPANIES companies on).
    peer_benchmark = models.BooleanField(_("Compare with peers"), default=False)
    # Contact properties the dashboard segments by often (plan, city, …): rolled up like
    # channels, so their segments cost the same for a thousand answers or a million.
    segment_properties = models.JSONField(_("Segment properties"), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"dashboard settings of company {self.company_id}"


# --- Digests (dashboards/digests.py) ----------------------------------------------------------


class DigestFrequency(models.TextChoices):
    OFF = "off", _("Off")
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


def _default_digest_hour() -> int:
    return 8


class DigestSchedule(TenantModel):
    """When a digest goes out: daily or weekly (on ``weekday``) at ``hour`` local time.

    ``last_sent_for`` is the key of the last occurrence claimed ("daily:2026-06-15",
    "weekly:2026-06-15": the frequency and the recipient-local date it was due on). Sending
    claims the next key with a conditional UPDATE, so an occurrence goes out at most once.
    """

    frequency = models.CharField(
        _("frequency"), max_length=8, choices=DigestFrequency.choices, default=DigestFrequency.OFF
    )
    weekday = models.PositiveSmallIntegerField(
        _("day of the week"), choices=Weekday.choices, default=Weekday.MONDAY
    )
    hour = models.PositiveSmallIntegerField(
        _("hour"), default=_default_digest_hour, validators=[MaxValueValidator(23)]
    )
    last_sent_for = models.CharField(max_length=24, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class DigestSubscription(DigestSchedule):
    """A member's own digest (time zone and language are the member's user's)."""

    membership = models.OneToOneField(
        "companies.Membership", on_delete=models.CASCADE, related_name="digest"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "membership"], name="digestsubscription_membership"
            ),
        ]
        indexes = [
            models.Index(
                fields=["frequency"],
                name="digestsubscription_on",
                condition=~models.Q(frequency="off"),
            ),
        ]

    def __str__(self) -> str:
        return f"digest of membership {self.membership_id}: {self.frequency}"


class DigestAddress(DigestSchedule):
    """An extra address (not a member) that gets the company's digest, in the company's time
    zone and default language. Admins manage them."""

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    email = models.EmailField(_("email address"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "email"], name="digestaddress_email"),
            models.UniqueConstraint(
                fields=["company", "public_id"], name="digestaddress_public_id"
            ),
        ]
        indexes = [
            models.Index(
                fields=["frequency"],
                name="digestaddress_on",
                condition=~models.Q(frequency="off"),
            ),
        ]

    def __str__(self) -> str:
        return f"digest to {self.email}: {self.frequency}"
