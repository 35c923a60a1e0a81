from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id
from companies.tenancy import TenantModel
from notifications.models import Channel


class Category(models.TextChoices):
    PROMOTER = "promoter", _("Promoter")
    PASSIVE = "passive", _("Passive")
    DETRACTOR = "detractor", _("Detractor")


def category_of(score: int) -> str:
    """Promoter 9–10, passive 7–8, detractor 0–6 (design §4)."""
    if score >= 9:
        return Category.PROMOTER
    if score >= 7:
        return Category.PASSIVE
    return Category.DETRACTOR


class ResponseChannel(models.TextChoices):
    EMAIL = Channel.EMAIL.value, Channel.EMAIL.label
    SMS = Channel.SMS.value, Channel.SMS.label
    WHATSAPP = Channel.WHATSAPP.value, Channel.WHATSAPP.label
    LINK = "link", _("Web link")


class Response(TenantModel):
    """One answer: at most one per invitation (database-enforced); answering again updates it.

    Web-link answers have no invitation and, unless identified, no contact; one per browser
    (``browser_key``: a hash of a cookie) per survey.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    survey = models.ForeignKey("surveys.Survey", on_delete=models.CASCADE, related_name="responses")
    invitation = models.ForeignKey(
        "surveys.Invitation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="responses",
    )
    contact = models.ForeignKey(
        "surveys.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="responses",
    )
    score = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    category = models.CharField(max_length=16, choices=Category.choices)
    comment = models.TextField(blank=True)
    extra_answers = models.JSONField(default=dict, blank=True)
    channel = models.CharField(max_length=16, choices=ResponseChannel.choices)
    language = models.CharField(max_length=8, choices=settings.SURVEY_LANGUAGES, default="en")
    # Snapshots taken when the answer arrives, so later edits of the contact don't move
    # old answers between segments.
    contact_properties = models.JSONField(default=dict, blank=True)
    invitation_properties = models.JSONField(default=dict, blank=True)
    browser_key = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001 (NULL = none; unique when set)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="response_public_id"),
            # One response per invitation; composite with the company like every key here.
            models.UniqueConstraint(
                fields=["company", "invitation"],
                name="response_one_per_invitation",
                condition=models.Q(invitation__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["company", "survey", "browser_key"],
                name="response_one_per_browser",
                condition=models.Q(browser_key__isnull=False),
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=0, score__lte=10), name="response_score_0_10"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "survey", "created_at"], name="response_survey_time"),
            models.Index(fields=["company", "created_at", "id"], name="response_by_age"),
            models.Index(fields=["company", "updated_at", "id"], name="response_by_update"),
        ]

    def __str__(self) -> str:
        return f"{self.score} ({self.category})"
