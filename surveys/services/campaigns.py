"""Campaigns: creating one, expanding its audience into invitations, done and cancelled."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company, User
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
) -> Campaign:
    """Schedule a send of ``survey`` to ``audience`` now (``scheduled_for`` None) or later,
    on ``channel`` (email, sms, whatsapp: contacts without that address are left out).

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
    with transaction.atomic():
        campaign = Campaign.objects.create(
            company=company,
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


def _campaign_expand_chunk(*, company: Company, campaign_id: int) -> tuple[Campaign, bool]:
    from surveys.selectors import contacts_matching

    with transaction.atomic():
        campaign = Campaign.objects.for_company(company).select_for_update().get(pk=campaign_id)
        if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.EXPANDING):
            return campaign, True
        survey = Survey.objects.for_company(company).get(pk=campaign.survey_id)
        contacts = list(
            contacts_matching(company=company, audience=campaign.audience)
            .filter(pk__gt=campaign.expanded_through)
            .order_by("pk")
            .only("pk", "public_id", "email", "phone", "language", "properties")[:EXPAND_CHUNK_SIZE]
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


def _expand_contacts(
    *, company: Company, campaign: Campaign, survey: Survey, contacts: Sequence[Contact]
) -> dict[str, int]:
    """Invite one chunk of contacts; returns the counts of those left out, by reason."""
    channels = {
        contact.pk: contact_channel(contact)
        if campaign.channel == CampaignChannel.PREFERRED
        else campaign.channel
        for contact in contacts
    }
    addresses: dict[int, str] = {}
    for contact in contacts:
        address = contact_address(contact, channels[contact.pk])
        if address:
            addresses[contact.pk] = address
    # Suppressed: (channel, address) pairs, one query per channel in use.
    suppressed: set[tuple[str, str]] = set()
    for channel in set(channels.values()):
        suppressed.update(
            (channel, address)
            for address in suppressed_on(
                company=company,
                channel=channel,
                addresses=[a for pk, a in addresses.items() if channels[pk] == channel],
            )
        )
    throttled = throttled_contact_ids(
        company=company,
        survey=survey,
        contact_ids=[c.pk for c in contacts if c.pk in addresses],
        at=campaign.scheduled_for,
    )
    counts = {"suppressed": 0, "throttled": 0, "sampled_out": 0}
    targets: list[Target] = []
    for contact in contacts:
        if (
            contact.pk not in addresses
            or (channels[contact.pk], addresses[contact.pk]) in suppressed
        ):
            counts["suppressed"] += 1
        elif contact.pk in throttled:
            counts["throttled"] += 1
        elif not _sampled_in(
            campaign_public_id=campaign.public_id,
            contact_public_id=contact.public_id,
            percent=survey.sample_percent,
        ):
            counts["sampled_out"] += 1
        else:
            language = contact.language or survey.default_language
            targets.append(Target(contact=contact, channel=channels[contact.pk], language=language))
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
    return counts


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
