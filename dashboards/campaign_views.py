"""One campaign's results under /c/<company_slug>/dashboard/campaigns/<campaign_id>/.

Here rather than in surveys: the page reads answers (responses) and the metrics (dashboards),
and layers point downwards (dashboards → responses → surveys).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from companies.models import Company, Role
from companies.permissions import company_view
from dashboards.metrics import nps_report
from dashboards.views import headline_context
from notifications.models import DeliveryStatus
from responses.selectors import invitation_scores, score_counts
from surveys.models import Invitation, InvitationStatus
from surveys.selectors import campaign_get, campaign_invitations, campaign_progress

RECIPIENTS_PER_PAGE = 50

RECIPIENT_STATES = {
    "queued": gettext_lazy("Queued"),
    "sent": gettext_lazy("Sent"),
    "delivered": gettext_lazy("Delivered"),
    "answered": gettext_lazy("Answered"),
    "failed": gettext_lazy("Failed"),
    "bounced": gettext_lazy("Bounced"),
    "complained": gettext_lazy("Marked as spam"),
    "suppressed": gettext_lazy("Not sent: unsubscribed or bounced before"),
    "throttled": gettext_lazy("Not sent: surveyed recently"),
    "cancelled": gettext_lazy("Cancelled"),
}


@dataclass(frozen=True)
class Recipient:
    invitation: Invitation
    state: str
    state_label: str
    score: int | None  # None: not answered, or an anonymous survey


def recipient_state(invitation: Invitation, *, answered: bool) -> str:
    """The one word for where an invitation stands, the furthest it got."""
    delivery_status = invitation.delivery.status if invitation.delivery else None
    if answered or invitation.answered_at is not None:
        return "answered"
    if invitation.status in (
        InvitationStatus.FAILED,
        InvitationStatus.SUPPRESSED,
        InvitationStatus.THROTTLED,
        InvitationStatus.CANCELLED,
    ):
        return str(invitation.status)
    if delivery_status in (DeliveryStatus.BOUNCED, DeliveryStatus.COMPLAINED):
        return "bounced" if delivery_status == DeliveryStatus.BOUNCED else "complained"
    if invitation.delivered_at is not None or delivery_status in (
        DeliveryStatus.DELIVERED,
        DeliveryStatus.OPENED,
        DeliveryStatus.CLICKED,
    ):
        return "delivered"
    if invitation.status == InvitationStatus.SENT:
        return "sent"
    return "queued"


def _recipients(
    company: Company, invitations: list[Invitation], anonymous: bool
) -> list[Recipient]:
    scores = invitation_scores(company=company, invitation_ids=[i.pk for i in invitations])
    rows = []
    for invitation in invitations:
        state = recipient_state(invitation, answered=invitation.pk in scores)
        rows.append(
            Recipient(
                invitation=invitation,
                state=state,
                state_label=str(RECIPIENT_STATES[state]),
                score=None if anonymous else scores.get(invitation.pk),
            )
        )
    return rows


@company_view(Role.VIEWER)
@require_safe
def campaign_results(request: HttpRequest, campaign_id: str) -> HttpResponse:
    """The campaign's response rate, NPS with its 95% interval and category split, and its
    recipients with where each stands, a page at a time (a constant number of queries)."""
    company: Company = request.company  # type: ignore[attr-defined]
    campaign = campaign_get(company=company, public_id=campaign_id)
    if campaign is None:
        raise Http404
    metrics = nps_report(score_counts(company=company, campaign=campaign))
    page = Paginator(
        campaign_invitations(company=company, campaign=campaign), RECIPIENTS_PER_PAGE
    ).get_page(request.GET.get("page"))
    anonymous = campaign.survey.anonymous
    context = {
        "campaign": campaign,
        "progress": campaign_progress(campaign=campaign, now=timezone.now()),
        "metrics": metrics,
        **headline_context(metrics),
        "page": page,
        "recipients": _recipients(company, list(page.object_list), anonymous),
        "anonymous": anonymous,
    }
    return render(request, "dashboards/campaign_results.html", context)
