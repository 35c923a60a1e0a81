"""The overview's "Getting started" steps, each ticked off from what the company has done.

Read-only and one query whatever the company's size: every step is an EXISTS over its own
table, evaluated together in one SELECT. A company with responses is past getting started
and is not shown the steps (the demo company, a company moved over with its history).
It lives here, in the app that may read every other one, because the steps span them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BooleanField, Exists, ExpressionWrapper, Q
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from companies.models import Company, Membership, Role, TeamInvite, role_at_least
from responses.models import Response
from surveys.models import Contact, Invitation, Survey


@dataclass(frozen=True)
class Step:
    key: str
    title: str | Promise
    text: str | Promise
    url: str
    # Whether the member's role opens the step's page (else the step is shown without a link).
    can: bool
    done: bool


@dataclass(frozen=True)
class GettingStarted:
    steps: list[Step]
    # The company has responses: getting started is behind it, the steps are not shown.
    has_data: bool
    # The member put the steps away (Membership.getting_started_hidden_at).
    hidden: bool

    @property
    def show(self) -> bool:
        return not self.has_data and not self.hidden

    @property
    def done_count(self) -> int:
        return sum(step.done for step in self.steps)


# (key, title, text, url name, least role that opens the page), in the order to do them.
_STEPS: list[tuple[str, str | Promise, str | Promise, str, str]] = [
    (
        "sender",
        _("Set your sender identity"),
        _("The name your survey emails come from and the address that receives replies."),
        "companies:settings",
        Role.ADMIN,
    ),
    (
        "survey",
        _("Create a survey"),
        _("One question, the languages customers answer in and the look of the answer page."),
        "surveys:create",
        Role.MANAGER,
    ),
    (
        "contacts",
        _("Import your contacts"),
        _("Upload a CSV or Excel file with emails or phone numbers."),
        "contacts:import",
        Role.MANAGER,
    ),
    (
        "sent",
        _("Send a survey"),
        _("One question by email or SMS; respondents answer with one click."),
        "surveys:list",
        Role.VIEWER,
    ),
    (
        "response",
        _("Get your first response"),
        _(
            "Answer your own survey to see what customers see; "
            "the dashboard fills as answers arrive."
        ),
        "dashboards:dashboard",
        Role.VIEWER,
    ),
    (
        "team",
        _("Invite your teammates"),
        _("Give each a role: managers run surveys, agents follow up with unhappy customers."),
        "companies:team",
        Role.VIEWER,
    ),
]


def getting_started_for(*, company: Company, membership: Membership) -> GettingStarted:
    """The steps as this member sees them: done or not, linked if their role opens the page."""
    row = (
        Company.objects.filter(pk=company.pk)
        .values(
            sender=ExpressionWrapper(~Q(reply_to=""), output_field=BooleanField()),
            survey=Exists(Survey.objects.for_company(company)),
            contacts=Exists(Contact.objects.for_company(company)),
            sent=Exists(Invitation.objects.for_company(company).filter(sent_at__isnull=False)),
            response=Exists(Response.objects.for_company(company)),
            team=ExpressionWrapper(
                Q(Exists(Membership.objects.for_company(company).exclude(pk=membership.pk)))
                | Q(Exists(TeamInvite.objects.for_company(company).filter(revoked_at=None))),
                output_field=BooleanField(),
            ),
        )
        .get()
    )
    done: dict[str, bool] = {key: bool(value) for key, value in row.items()}
    slug = {"company_slug": company.slug}
    steps = [
        Step(
            key=key,
            title=title,
            text=text,
            url=reverse(url_name, kwargs=slug),
            can=role_at_least(membership.role, least_role),
            done=done[key],
        )
        for key, title, text, url_name, least_role in _STEPS
    ]
    return GettingStarted(
        steps=steps,
        has_data=done["response"],
        hidden=membership.getting_started_hidden_at is not None,
    )
