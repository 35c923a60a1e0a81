"""The overview's "Getting started" steps: ticked off from the data, hidden per member, gone
once the company has responses."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from companies.models import Company, Membership, Role, TeamInvite
from companies.services import team_invite_create
from conftest import Persona, add_member, logged_in
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db

STEP_KEYS = ["sender", "survey", "contacts", "sent", "response", "team"]


def _overview(company: Company) -> str:
    return reverse("companies:overview", kwargs={"company_slug": company.slug})


def _toggle(company: Company) -> str:
    return reverse("companies:getting-started", kwargs={"company_slug": company.slug})


def _page(client: Client, company: Company) -> str:
    response = client.get(_overview(company))
    assert response.status_code == 200
    return response.content.decode()


def _done_steps(body: str) -> set[str]:
    return set(re.findall(r'<li class="done" data-step="(\w+)"', body))


def _shown_steps(body: str) -> list[str]:
    return re.findall(r'data-step="(\w+)"', body)


# --- What each step reads -----------------------------------------------------------------------


def _set_reply_to(company: Company) -> None:
    Company.objects.filter(pk=company.pk).update(reply_to="care@acme.test")


def _create_survey(company: Company) -> None:
    make_survey(company)


def _import_contact(company: Company) -> None:
    make_contact(company)


def _send(company: Company) -> None:
    make_invitation(make_survey(company), make_contact(company))


def _invite_teammate(company: Company) -> None:
    owner = Membership.objects.for_company(company).get(role=Role.OWNER)
    team_invite_create(
        company=company, email="new@acme.test", role=Role.MANAGER, invited_by=owner.user
    )


def _add_teammate(company: Company) -> None:
    add_member(company, "mate@acme.test", Role.AGENT)


def test_a_new_company_sees_every_step_undone(owner: Persona) -> None:
    body = _page(owner.client, owner.company)

    assert 'data-testid="getting-started"' in body
    assert _shown_steps(body) == STEP_KEYS
    assert _done_steps(body) == set()
    assert "0 of 6 done" in body
    # The owner may open every step's page.
    for name in ("companies:settings", "surveys:create", "contacts:import", "companies:team"):
        assert f'href="{reverse(name, kwargs={"company_slug": owner.company.slug})}"' in body


@pytest.mark.parametrize(
    ("do", "ticked"),
    [
        (_set_reply_to, {"sender"}),
        (_create_survey, {"survey"}),
        (_import_contact, {"contacts"}),
        # Sending needs a survey and a contact: those two tick too.
        (_send, {"survey", "contacts", "sent"}),
        (_invite_teammate, {"team"}),
        (_add_teammate, {"team"}),
    ],
    ids=["sender", "survey", "contacts", "sent", "team-invite", "team-member"],
)
def test_each_step_ticks_itself_off(
    owner: Persona, do: Callable[[Company], None], ticked: set[str]
) -> None:
    do(owner.company)

    body = _page(owner.client, owner.company)

    assert _done_steps(body) == ticked
    assert f"{len(ticked)} of 6 done" in body


def test_an_unsent_invitation_and_a_revoked_team_invite_do_not_count(owner: Persona) -> None:
    make_invitation(make_survey(owner.company), make_contact(owner.company), sent_at=None)
    _invite_teammate(owner.company)
    TeamInvite.objects.for_company(owner.company).update(revoked_at=timezone.now())

    assert _done_steps(_page(owner.client, owner.company)) == {"survey", "contacts"}


def test_a_company_with_responses_sees_where_to_go_instead(owner: Persona) -> None:
    response_record(
        invitation=None,
        survey=make_survey(owner.company),
        score=9,
        channel="link",
        language="en",
        browser_key="k1",
    )

    body = _page(owner.client, owner.company)

    assert 'data-testid="getting-started"' not in body
    assert 'data-testid="next-steps"' in body
    assert reverse("dashboards:dashboard", kwargs={"company_slug": owner.company.slug}) in body
    # Nothing to bring back: the steps are behind the company.
    assert 'data-testid="getting-started-show"' not in body


def test_the_demo_company_does_not_see_the_steps(
    settings: SettingsWrapper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("PORT", "8123")
    call_command("ensure_demo", stdout=StringIO())
    company = Company.objects.get(name="Demo Coffee Co.")
    owner = Membership.objects.for_company(company).get(role=Role.OWNER).user

    body = _page(logged_in(owner), company)

    assert 'data-testid="getting-started"' not in body
    assert 'data-testid="next-steps"' in body


def test_the_steps_cost_the_same_queries_however_far_along(owner: Persona) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _page(owner.client, owner.company)
        return len(captured)

    empty = queries()
    for do in (_set_reply_to, _send, _invite_teammate, _add_teammate):
        do(owner.company)
    body = _page(owner.client, owner.company)
    assert _done_steps(body) == {"sender", "survey", "contacts", "sent", "team"}
    assert queries() == empty


# --- Lesser roles -------------------------------------------------------------------------------


def test_steps_link_only_to_pages_the_member_may_open(personas: dict[str, Persona]) -> None:
    company = personas[Role.OWNER].company
    slug = {"company_slug": company.slug}
    manager = _page(personas[Role.MANAGER].client, company)
    viewer = _page(personas[Role.VIEWER].client, company)

    assert f'href="{reverse("companies:settings", kwargs=slug)}"' not in manager
    assert f'href="{reverse("surveys:create", kwargs=slug)}"' in manager
    assert f'href="{reverse("contacts:import", kwargs=slug)}"' in manager
    for name in ("companies:settings", "surveys:create", "contacts:import"):
        assert f'href="{reverse(name, kwargs=slug)}"' not in viewer
    # Everyone still sees the steps and what is done (the teammates exist: team is ticked).
    assert _shown_steps(viewer) == STEP_KEYS
    assert _done_steps(viewer) == {"team"}


# --- Hiding and bringing back -------------------------------------------------------------------


def test_a_member_hides_the_steps_for_themselves_and_brings_them_back(
    personas: dict[str, Persona],
) -> None:
    viewer = personas[Role.VIEWER]
    company = viewer.company

    response = viewer.client.post(_toggle(company), {"hidden": "1"})

    assert response.status_code == 302
    assert response["Location"] == _overview(company)
    body = _page(viewer.client, company)
    assert 'data-testid="getting-started"' not in body
    assert 'data-testid="getting-started-show"' in body
    # The others still see them: each teammate decides for themselves.
    assert 'data-testid="getting-started"' in _page(personas[Role.OWNER].client, company)

    viewer.client.post(_toggle(company), {"hidden": "0"})

    body = _page(viewer.client, company)
    assert 'data-testid="getting-started"' in body
    assert 'data-testid="getting-started-show"' not in body


def test_hiding_needs_a_post_with_the_csrf_token(owner: Persona) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)

    assert client.get(_toggle(owner.company)).status_code == 405
    assert client.post(_toggle(owner.company), {"hidden": "1"}).status_code == 403

    page = client.get(_overview(owner.company)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    hidden = client.post(
        _toggle(owner.company), {"hidden": "1", "csrfmiddlewaretoken": token.group(1)}
    )
    assert hidden.status_code == 302
    membership = Membership.objects.for_company(owner.company).get(user=owner.user)
    assert membership.getting_started_hidden_at is not None


def test_an_outsider_cannot_hide_another_company_s_steps(owner: Persona, outsider: Persona) -> None:
    response = outsider.client.post(_toggle(owner.company), {"hidden": "1"})

    assert response.status_code == 404
    assert not Membership.objects.unscoped(reason="test: nobody's flag changed").filter(
        getting_started_hidden_at__isnull=False
    )


def test_hidden_steps_stay_hidden_as_the_company_progresses(owner: Persona) -> None:
    owner.client.post(_toggle(owner.company), {"hidden": "1"})
    _send(owner.company)

    body = _page(owner.client, owner.company)
    assert 'data-testid="getting-started"' not in body
    assert 'data-testid="getting-started-show"' in body
