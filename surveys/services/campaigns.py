"""Campaigns: creating one, expanding its audience into invitations, done and cancelled."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company, User, new_public_id
from companies.wake import wake
from notifications.models import Channel
from surveys.models import (
    Campaign,
    CampaignChannel,
    CampaignStatus,
    Contact,
    Invitation,
    InvitationStatus,
    Survey,
)
from surveys.services.invitations import (
    Target,
    channel_clean,
    contact_address,
    contact_channel,
    invitations_schedule,
    suppressed_on,
    throttled_contact_ids,
)
from surveys.services.surveys import survey_check_sendable

# Contacts per expansion chunk: one transaction and a constant number of queries each.
EXPAND_CHUNK_SIZE = 1000

MAX_SCHEDULE_AHEAD = timedelta(days=366)

# What companies.models.new_public_id makes (URL-safe base64 of 12 random bytes).
PUBLIC_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{16}")


def _sampled_in(*, campaign_public_id: str, contact_public_id: str, percent: int) -> bool:
    """Deterministic sampling: the same campaign and contact always give the same answer."""
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{campaign_public_id}:{contact_public_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


def audience_clean(audience: object) -> dict[str, Any]:
    """``surveys.selectors.audience_validate`` with its errors on the ``audience`` field."""
    from surveys.selectors import audience_validate

    try:
        return audience_validate(audience)
    except ValidationError as exc:
        raise ValidationError({"audience": exc.messages}) from exc


def campaign_create(
    *,
    company: Company,
    survey: Survey,
    audience: dict[str, Any],
    scheduled_for: datetime | None = None,
    created_by: User | None = None,
    name: str = "",
    channel: str = Channel.EMAIL,
    public_id: str | None = None,
) -> Campaign:
    """Schedule a send of ``survey`` to ``audience`` now (``scheduled_for`` None) or later,
    on ``channel`` (email, sms, whatsapp: contacts without that address are left out).

    ``public_id``: the id the campaign's preview was counted with (it fixes the sample). A
    campaign that already has it is returned as it is: a confirmation sent twice (a double
    click, a reload) creates one campaign.

    A campaign due now starts expanding straight away (after commit); a later one is started
    by the dispatcher when due. Refuses a survey that cannot be sent (draft, paused,
    archived) with a ``ValidationError`` on ``survey``.
    """
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    survey_check_sendable(survey)
    channel = channel_clean(channel, preferred=True)
    cleaned_audience = audience_clean(audience)
    now = timezone.now()
    when = scheduled_for or now
    if when > now + MAX_SCHEDULE_AHEAD:
        raise ValidationError({"scheduled_for": [_("At most a year ahead.")]})
    if len(name) > 120:
        raise ValidationError({"name": [_("At most 120 characters.")]})
    due = when <= now
    if public_id is not None:
        if not PUBLIC_ID_SHAPE.fullmatch(public_id):
            raise ValidationError({"public_id": [_("Not a campaign id.")]})
        existing = Campaign.objects.for_company(company).filter(public_id=public_id).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                company=company,
                public_id=public_id or new_public_id(),
                survey=survey,
                name=name.strip(),
                channel=channel,
                audience=cleaned_audience,
                scheduled_for=max(when, now) if due else when,
                status=CampaignStatus.EXPANDING if due else CampaignStatus.SCHEDULED,
                progressed_at=now if due else None,
                created_by=created_by,
            )
            if due:
                expansion_wake(company_id=company.pk, campaign_id=campaign.pk)
    except IntegrityError:
        # The same confirmation, twice at once: the other request created it.
        if public_id is None:
            raise
        return Campaign.objects.for_company(company).get(public_id=public_id)
    return campaign


def expansion_wake(*, company_id: int, campaign_id: int) -> None:
    """After the commit, wake a worker for the campaign's expansion (a lost message is
    fine: the stale sweep wakes an expansion that makes no progress)."""
    wake("surveys.expand_campaign", company_id, campaign_id)


def campaign_expand(*, company: Company, campaign_id: int) -> Campaign:
    """Turn the campaign's audience into scheduled invitations, chunk by chunk.

    Each chunk (``EXPAND_CHUNK_SIZE`` contacts in id order, resuming after
    ``campaign.expanded_through``) is one transaction with a constant number of queries:
    the contacts, their suppressed addresses, the throttled ones, one bulk insert of
    invitations and one of their events, one counter update. Every targeted contact lands in
    exactly one bucket: suppressed (this count includes contacts without an email address,
    who cannot get an email), throttled, sampled out, or invited. The campaign row is locked
    per chunk, so two runs of the same expansion (a redelivered task) take turns and never
    invite a contact twice.
    """
    while True:
        campaign, finished = _campaign_expand_chunk(company=company, campaign_id=campaign_id)
        if finished:
            return campaign


def _audience_chunk(
    *, company: Company, audience: dict[str, Any], after: int, size: int
) -> list[Contact]:
    """The next ``size`` contacts of ``audience`` after contact id ``after``, in id order
    (the expansion and the preview page through an audience with this same query)."""
    from surveys.selectors import contacts_matching

    return list(
        contacts_matching(company=company, audience=audience)
        .filter(pk__gt=after)
        .order_by("pk")
        .only("pk", "public_id", "email", "phone", "language", "properties")[:size]
    )


def _campaign_expand_chunk(*, company: Company, campaign_id: int) -> tuple[Campaign, bool]:
    with transaction.atomic():
        campaign = Campaign.objects.for_company(company).select_for_update().get(pk=campaign_id)
        if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.EXPANDING):
            return campaign, True
        survey = Survey.objects.for_company(company).get(pk=campaign.survey_id)
        contacts = _audience_chunk(
            company=company,
            audience=campaign.audience,
            after=campaign.expanded_through,
            size=EXPAND_CHUNK_SIZE,
        )
        if contacts:
            counts = _expand_contacts(
                company=company, campaign=campaign, survey=survey, contacts=contacts
            )
            Campaign.objects.for_company(company).filter(pk=campaign.pk).update(
                expanded_through=contacts[-1].pk,
                targeted=F("targeted") + len(contacts),
                suppressed=F("suppressed") + counts["suppressed"],
                throttled=F("throttled") + counts["throttled"],
                sampled_out=F("sampled_out") + counts["sampled_out"],
                status=CampaignStatus.EXPANDING,
                progressed_at=timezone.now(),
            )
        finished = len(contacts) < EXPAND_CHUNK_SIZE
        if finished:
            Campaign.objects.for_company(company).filter(pk=campaign.pk).update(
                status=CampaignStatus.SENDING, progressed_at=timezone.now()
            )
        campaign.refresh_from_db()
    if finished:
        campaigns_mark_done(company=company, campaign_ids=[campaign.pk])
        campaign.refresh_from_db()
    return campaign, finished


class SkipReason(StrEnum):
    """Why the expansion leaves a contact of the audience out (one reason per contact, the
    first that applies, in this order)."""

    NO_ADDRESS = "no_address"  # no email address (or phone) for the campaign's channel
    SUPPRESSED = "suppressed"  # unsubscribed, bounced, complained or STOPped on that channel
    THROTTLED = "throttled"  # surveyed within the survey's throttle window
    SAMPLED_OUT = "sampled_out"  # not drawn by the survey's sample percentage


def _audience_split(
    *,
    company: Company,
    survey: Survey,
    channel: str,
    campaign_public_id: str,
    at: datetime,
    contacts: Sequence[Contact],
) -> tuple[list[Target], Counter[SkipReason]]:
    """The contacts of one chunk the campaign invites, and how many it skips per reason.

    The one copy of the rules: the expansion invites the targets, the preview counts them.
    A constant number of queries: suppressed addresses (one per channel in use) and the
    throttled contacts (one).
    """
    channels = {
        contact.pk: contact_channel(contact) if channel == CampaignChannel.PREFERRED else channel
        for contact in contacts
    }
    addresses: dict[int, str] = {}
    for contact in contacts:
        address = contact_address(contact, channels[contact.pk])
        if address:
            addresses[contact.pk] = address
    # Suppressed: (channel, address) pairs, one query per channel in use.
    suppressed: set[tuple[str, str]] = set()
    for used in set(channels.values()):
        suppressed.update(
            (used, address)
            for address in suppressed_on(
                company=company,
                channel=used,
                addresses=[a for pk, a in addresses.items() if channels[pk] == used],
            )
        )
    throttled = throttled_contact_ids(
        company=company,
        survey=survey,
        contact_ids=[c.pk for c in contacts if c.pk in addresses],
        at=at,
    )
    skipped: Counter[SkipReason] = Counter()
    targets: list[Target] = []
    for contact in contacts:
        if contact.pk not in addresses:
            skipped[SkipReason.NO_ADDRESS] += 1
        elif (channels[contact.pk], addresses[contact.pk]) in suppressed:
            skipped[SkipReason.SUPPRESSED] += 1
        elif contact.pk in throttled:
            skipped[SkipReason.THROTTLED] += 1
        elif not _sampled_in(
            campaign_public_id=campaign_public_id,
            contact_public_id=contact.public_id,
            percent=survey.sample_percent,
        ):
            skipped[SkipReason.SAMPLED_OUT] += 1
        else:
            language = contact.language or survey.default_language
            targets.append(Target(contact=contact, channel=channels[contact.pk], language=language))
    return targets, skipped


def _expand_contacts(
    *, company: Company, campaign: Campaign, survey: Survey, contacts: Sequence[Contact]
) -> dict[str, int]:
    """Invite one chunk of contacts; returns the counts of those left out, by reason (the
    campaign's ``suppressed`` counter includes the contacts without an address)."""
    targets, skipped = _audience_split(
        company=company,
        survey=survey,
        channel=campaign.channel,
        campaign_public_id=campaign.public_id,
        at=campaign.scheduled_for,
        contacts=contacts,
    )
    created = invitations_schedule(
        company=company,
        survey=survey,
        campaign=campaign,
        scheduled_for=campaign.scheduled_for,
        targets=targets,
    )
    if created:
        # They are due (the campaign is expanding): the dispatcher is woken with this chunk's
        # commit, so sending overlaps the rest of the expansion.
        wake("surveys.dispatch_due")
    return {
        "suppressed": skipped[SkipReason.NO_ADDRESS] + skipped[SkipReason.SUPPRESSED],
        "throttled": skipped[SkipReason.THROTTLED],
        "sampled_out": skipped[SkipReason.SAMPLED_OUT],
    }


# Contacts per preview chunk: the same rules as the expansion, fewer round trips.
PREVIEW_CHUNK_SIZE = 5000


@dataclass(frozen=True)
class AudiencePreview:
    """What sending a campaign now would do: how many contacts match the audience, how many
    would get the survey (per channel) and how many would be skipped, per reason."""

    matching: int
    invited: int
    by_channel: dict[str, int]
    skipped: dict[str, int]  # SkipReason value → count, every reason present


def campaign_preview(
    *,
    company: Company,
    survey: Survey,
    audience: dict[str, Any],
    channel: str,
    campaign_public_id: str,
    scheduled_for: datetime | None = None,
) -> AudiencePreview:
    """Count what ``campaign_create`` with these arguments (and this public id, which fixes
    the sample) would send, reason by reason, without writing anything.

    It pages through the audience with the expansion's own query and splits each chunk with
    the expansion's own rules (``_audience_split``), so the two cannot drift apart. A
    constant number of queries per ``PREVIEW_CHUNK_SIZE`` contacts. The counts are those of
    this moment: contacts, suppressions and other sends may change before a later send.
    """
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    channel = channel_clean(channel, preferred=True)
    cleaned_audience = audience_clean(audience)
    at = scheduled_for or timezone.now()
    matching = 0
    by_channel: Counter[str] = Counter()
    skipped: Counter[SkipReason] = Counter()
    after = 0
    while True:
        contacts = _audience_chunk(
            company=company, audience=cleaned_audience, after=after, size=PREVIEW_CHUNK_SIZE
        )
        if contacts:
            targets, chunk_skipped = _audience_split(
                company=company,
                survey=survey,
                channel=channel,
                campaign_public_id=campaign_public_id,
                at=at,
                contacts=contacts,
            )
            matching += len(contacts)
            by_channel.update(target.channel for target in targets)
            skipped.update(chunk_skipped)
            after = contacts[-1].pk
        if len(contacts) < PREVIEW_CHUNK_SIZE:
            break
    return AudiencePreview(
        matching=matching,
        invited=sum(by_channel.values()),
        by_channel=dict(by_channel),
        skipped={reason.value: skipped[reason] for reason in SkipReason},
    )


def campaigns_mark_done(*, company: Company, campaign_ids: Iterable[int]) -> int:
    """Campaigns in ``sending`` whose invitations have all left the pipeline become done."""
    pending = Invitation.objects.for_company(company).filter(
        campaign=OuterRef("pk"),
        status__in=(
            InvitationStatus.SCHEDULED,
            InvitationStatus.QUEUED,
            InvitationStatus.SENDING,
        ),
    )
    return (
        Campaign.objects.for_company(company)
        .filter(pk__in=list(campaign_ids), status=CampaignStatus.SENDING)
        .exclude(Exists(pending))
        .update(status=CampaignStatus.DONE, finished_at=timezone.now())
    )


def campaign_cancel(*, company: Company, campaign: Campaign) -> int:
    """Stop a campaign: its invitations not yet handed to a send task are cancelled."""
    with transaction.atomic():
        Campaign.objects.for_company(company).filter(
            pk=campaign.pk,
            status__in=(CampaignStatus.SCHEDULED, CampaignStatus.EXPANDING, CampaignStatus.SENDING),
        ).update(status=CampaignStatus.CANCELLED, finished_at=timezone.now())
        return (
            Invitation.objects.for_company(company)
            .filter(campaign=campaign, status=InvitationStatus.SCHEDULED)
            .update(status=InvitationStatus.CANCELLED)
        )
