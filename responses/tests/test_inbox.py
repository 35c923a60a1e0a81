"""The inbox pages: views and filters, bulk actions, the follow-up page, rules pages, roles,
outsiders on every route, the navigation count, and constant query counts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Membership, Role
from responses.alerts import alerts_evaluate
from responses.models import AlertRule, Followup, FollowupEvent, FollowupStatus
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db

_counter = iter(range(1_000_000))


def open_followup(company, score: int = 2, comment: str = "", survey=None, **contact: Any):
    survey = survey or make_survey(company)
    n = next(_counter)
    contact.setdefault("email", f"c{n}@customer.test")
    invitation, _token = make_invitation(survey, make_contact(company, **contact))
    response = response_record(
        invitation=invitation,
        survey=survey,
        score=score,
        comment=comment,
        channel="email",
        language="en",
    )
    alerts_evaluate(company=company, response_id=response.pk)
    return Followup.objects.for_company(company).get(response=response)


def url(company, name: str, **kwargs: str) -> str:
    return reverse(f"inbox:{name}", kwargs={"company_slug": company.slug, **kwargs})


def member(personas, role: str) -> Membership:
    return Membership.objects.for_company(personas[role].company).get(user=personas[role].user)


# --- The list ------------------------------------------------------------------------------------


def test_views_mine_unassigned_overdue_all(company, personas):
    agent = member(personas, Role.AGENT)
    mine = open_followup(company, comment="mine")  # round-robin: the only agent
    assert mine.assignee == agent
    nobody = open_followup(company, comment="nobody")
    Followup.objects.for_company(company).filter(pk=nobody.pk).update(assignee=None)
    late = open_followup(company, comment="late")
    from datetime import timedelta

    from django.utils import timezone

    Followup.objects.for_company(company).filter(pk=late.pk).update(
        due_at=timezone.now() - timedelta(hours=1)
    )
    client = personas[Role.AGENT].client

    def shown(view: str) -> set[str]:
        body = client.get(url(company, "list") + f"?view={view}").content.decode()
        return {c for c in ("mine", "nobody", "late") if f">{c}</a>" in body}

    assert shown("mine") == {"mine", "late"}
    assert shown("unassigned") == {"nobody"}
    assert shown("overdue") == {"late"}
    assert shown("all") == {"mine", "nobody", "late"}


def test_the_inbox_opens_where_the_work_is(company, personas):
    # A solo owner is assigned nothing: opening on "Mine" said "Nothing here." while
    # follow-ups waited unassigned.
    waiting = open_followup(company, comment="waiting")
    Followup.objects.for_company(company).filter(pk=waiting.pk).update(assignee=None)
    owner, agent = personas[Role.OWNER].client, personas[Role.AGENT].client

    def opened(client: Client) -> str:
        page = client.get(url(company, "list"))
        assert page.status_code == 200
        return page.context["view"]

    assert opened(owner) == "unassigned"
    assert ">waiting</a>" in owner.get(url(company, "list")).content.decode()
    mine = open_followup(company, comment="mine")  # round-robin: the agent's
    assert mine.assignee == member(personas, Role.AGENT)
    assert opened(agent) == "mine"
    assert opened(personas[Role.VIEWER].client) == "all"
    Followup.objects.for_company(company).update(status=FollowupStatus.RESOLVED, resolution="fixed")
    assert opened(owner) == "all"  # nothing open anywhere: the history
    assert opened(agent) == "all"
    # A view asked for is the view shown.
    assert agent.get(url(company, "list") + "?view=mine").context["view"] == "mine"


def test_filters_by_survey_score_and_status(company, personas, owner):
    one, two = make_survey(company, name="One"), make_survey(company, name="Two")
    open_followup(company, score=1, comment="one-low", survey=one)
    open_followup(company, score=5, comment="one-high", survey=one)
    done = open_followup(company, score=3, comment="two-done", survey=two)
    Followup.objects.for_company(company).filter(pk=done.pk).update(
        status=FollowupStatus.RESOLVED, resolution="fixed"
    )
    client = owner.client

    def shown(query: str) -> set[str]:
        body = client.get(url(company, "list") + "?view=all&" + query).content.decode()
        return {c for c in ("one-low", "one-high", "two-done") if f">{c}</a>" in body}

    assert shown("") == {"one-low", "one-high"}  # open ones by default
    assert shown("status=any") == {"one-low", "one-high", "two-done"}
    assert shown("status=resolved") == {"two-done"}
    assert shown(f"survey={one.public_id}") == {"one-low", "one-high"}
    assert shown("score_min=4&score_max=6") == {"one-high"}
    assert shown("score_min=banana") == {"one-low", "one-high"}  # nonsense: ignored


def test_segment_filter_by_contact_property(company, owner):
    open_followup(company, comment="gold-one", properties={"plan": "gold"})
    open_followup(company, comment="free-one", properties={"plan": "free"})
    open_followup(
        company,
        comment="anon-gold",
        survey=make_survey(company, anonymous=True),
        properties={"plan": "gold"},
    )

    def shown(segment: str) -> set[str]:
        query = urlencode({"view": "all", "segment": segment})
        body = owner.client.get(url(company, "list") + "?" + query).content.decode()
        return {c for c in ("gold-one", "free-one", "anon-gold") if f">{c}</a>" in body}

    assert shown("plan=gold") == {"gold-one"}  # never the anonymous answer
    assert shown("plan = free") == {"free-one"}
    assert shown("plan__contains=g") == {"gold-one", "free-one", "anon-gold"}  # refused: no filter
    assert shown("nonsense") == {"gold-one", "free-one", "anon-gold"}
    assert shown("contains=gold") == set()  # a property name, not a lookup


def test_bulk_assign_and_resolve(company, personas):
    first, second = open_followup(company), open_followup(company)
    client = personas[Role.AGENT].client
    admin = member(personas, Role.ADMIN)
    response = client.post(
        url(company, "bulk"),
        {
            "followup": [first.public_id, second.public_id],
            "action": "assign",
            "assignee": admin.public_id,
            "return_query": "view=all",
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith("?view=all")
    assert {f.assignee_id for f in Followup.objects.for_company(company)} == {admin.pk}
    client.post(
        url(company, "bulk"),
        {"followup": [first.public_id], "action": "resolve", "resolution": "no_action"},
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.resolution) == ("resolved", "no_action")
    assert second.status == "new"


def test_bulk_ignores_other_companies_follow_ups(company, other_company, personas):
    theirs = open_followup(other_company)
    personas[Role.AGENT].client.post(
        url(company, "bulk"),
        {"followup": [theirs.public_id], "action": "resolve", "resolution": "fixed"},
    )
    theirs.refresh_from_db()
    assert theirs.status == "new"


def test_bulk_return_query_is_no_open_redirect(company, personas):
    response = personas[Role.AGENT].client.post(
        url(company, "bulk"), {"action": "assign", "return_query": "//evil.test/x"}
    )
    assert response["Location"] == url(company, "list")


def test_viewers_read_but_do_not_work(company, personas):
    followup = open_followup(company, comment="read me")
    viewer = personas[Role.VIEWER].client
    page = viewer.get(url(company, "list") + "?view=all")
    assert page.status_code == 200
    assert "read me" in page.content.decode()
    assert 'name="followup"' not in page.content.decode()  # no bulk checkboxes
    detail = viewer.get(url(company, "followup", followup_id=followup.public_id))
    assert detail.status_code == 200
    assert 'data-testid="assign-me"' not in detail.content.decode()
    for name in ("assign", "status", "note"):
        assert (
            viewer.post(
                url(company, name, followup_id=followup.public_id),
                {"assignee": "me", "status": "resolved", "resolution": "fixed", "body": "x"},
            ).status_code
            == 403
        )
    assert viewer.post(url(company, "bulk"), {"action": "resolve"}).status_code == 403
    followup.refresh_from_db()
    assert (followup.status, followup.assignee.user) == ("new", personas[Role.AGENT].user)
    assert not FollowupEvent.objects.for_company(company).filter(kind="note").exists()


# --- One follow-up -----------------------------------------------------------------------------


def test_agent_assigns_to_self_notes_and_resolves(company, personas):
    followup = open_followup(company, comment="Long wait", name="Ann Customer")
    Followup.objects.for_company(company).filter(pk=followup.pk).update(assignee=None)
    client = personas[Role.AGENT].client
    page = url(company, "followup", followup_id=followup.public_id)
    client.post(url(company, "assign", followup_id=followup.public_id), {"assignee": "me"})
    client.post(url(company, "note", followup_id=followup.public_id), {"body": "Calling her"})
    client.post(
        url(company, "status", followup_id=followup.public_id),
        {"status": "resolved", "resolution": "contacted"},
    )
    followup.refresh_from_db()
    assert followup.assignee == member(personas, Role.AGENT)
    assert (followup.status, followup.resolution) == ("resolved", "contacted")
    body = client.get(page).content.decode()
    assert "Long wait" in body
    assert "Calling her" in body
    assert "Ann Customer" in body
    assert "agent@acme.test" in body  # who did it, in the thread
    # The status change in words, not the stored values ("new → resolved (contacted)").
    assert "New → Resolved (Talked to the customer)" in body
    assert "(contacted)" not in body
    client.cookies["django_language"] = "ru"
    assert "Решено" in client.get(page).content.decode()


def test_resolving_without_a_reason_is_refused(company, personas):
    followup = open_followup(company)
    response = personas[Role.AGENT].client.post(
        url(company, "status", followup_id=followup.public_id), {"status": "resolved"}, follow=True
    )
    assert "Choose why it is resolved." in response.content.decode()
    followup.refresh_from_db()
    assert followup.status == "new"


def test_follow_up_page_shows_the_contact_and_earlier_answers(company, personas):
    contact = make_contact(
        company, email="bob@customer.test", name="Bob", properties={"plan": "gold"}
    )
    earlier_survey = make_survey(company, name="Last year")
    invitation, _t = make_invitation(earlier_survey, contact)
    response_record(
        invitation=invitation,
        survey=earlier_survey,
        score=9,
        comment="Loved it back then",
        channel="email",
        language="en",
    )
    survey = make_survey(company, name="This year")
    invitation, _t = make_invitation(survey, contact)
    response = response_record(
        invitation=invitation,
        survey=survey,
        score=1,
        comment="Now awful",
        channel="email",
        language="en",
    )
    alerts_evaluate(company=company, response_id=response.pk)
    followup = Followup.objects.for_company(company).get()
    body = (
        personas[Role.VIEWER]
        .client.get(url(company, "followup", followup_id=followup.public_id))
        .content.decode()
    )
    assert "bob@customer.test" in body
    assert "gold" in body
    assert "Loved it back then" in body
    assert "Now awful" in body


def test_anonymous_survey_follow_up_reveals_nobody(company, owner):
    survey = make_survey(company, anonymous=True)
    followup = open_followup(
        company,
        comment="My manager shouts",
        survey=survey,
        email="hidden@staff.test",
        name="Hidden Person",
        properties={"team": "Sales-East-Unique"},
    )
    assert followup.response.contact is None
    body = owner.client.get(
        url(company, "followup", followup_id=followup.public_id)
    ).content.decode()
    assert "My manager shouts" in body
    assert 'data-testid="anonymous-note"' in body
    for secret in ("hidden@staff.test", "Hidden Person", "Sales-East-Unique"):
        assert secret not in body
    listing = owner.client.get(url(company, "list") + "?view=all").content.decode()
    assert "hidden@staff.test" not in listing


# --- Rules (admins only) ---------------------------------------------------------------------


def test_admin_creates_edits_and_deletes_a_rule(company, personas):
    client = personas[Role.ADMIN].client
    survey = make_survey(company, name="Support")
    response = client.post(
        url(company, "rule-create"),
        {
            "name": "Refunds",
            "enabled": "on",
            "survey": survey.public_id,
            "words": "refund*, возврат*\nchargeback",
            "email_roles": ["admin"],
            "email_addresses": "Lead@Acme.test",
            "create_followup": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()
    rule = AlertRule.objects.for_company(company).get(name="Refunds")
    assert rule.words == ["refund*", "возврат*", "chargeback"]
    assert rule.survey == survey
    assert rule.email_addresses == ["lead@acme.test"]
    edit = url(company, "rule-edit", rule_id=rule.public_id)
    assert "возврат*" in client.get(edit).content.decode()
    client.post(edit, {"name": "Refunds!", "score_min": "0", "score_max": "6"})
    rule.refresh_from_db()
    assert (rule.name, rule.score_max, rule.survey, rule.enabled) == ("Refunds!", 6, None, False)
    client.post(url(company, "rule-delete", rule_id=rule.public_id))
    assert not AlertRule.objects.for_company(company).filter(pk=rule.pk).exists()


def test_rule_form_errors(company, other_company, personas):
    client = personas[Role.ADMIN].client
    theirs = make_survey(other_company, name="Theirs")
    for data in (
        {"name": "x", "score_min": "7", "score_max": "3"},
        {"name": "x", "email_addresses": "not-an-address"},
        {"name": "x", "property_key": "plan"},
        {"name": "x", "survey": theirs.public_id},
    ):
        response = client.post(url(company, "rule-create"), data)
        assert response.status_code == 200, data
    assert AlertRule.objects.for_company(company).count() == 1  # the default only


def test_only_admins_see_and_edit_rules(company, personas):
    rule = AlertRule.objects.for_company(company).get()
    for role in (Role.VIEWER, Role.AGENT, Role.MANAGER):
        client = personas[role].client
        assert client.get(url(company, "rules")).status_code == 403
        assert client.post(url(company, "rule-delete", rule_id=rule.public_id)).status_code == 403
        assert (
            client.post(
                url(company, "rule-edit", rule_id=rule.public_id), {"name": "x"}
            ).status_code
            == 403
        )
    rule.refresh_from_db()
    assert rule.name == "Every detractor"
    assert personas[Role.ADMIN].client.get(url(company, "rules")).status_code == 200


def test_admin_sets_the_sla(company, personas):
    personas[Role.ADMIN].client.post(url(company, "rules"), {"sla_hours": "24"})
    from responses.followups import inbox_settings_of

    row = inbox_settings_of(company=company)
    assert (row.sla_hours, row.round_robin) == (24, False)


# --- Outsiders, on every inbox route ---------------------------------------------------------


def test_outsiders_get_404_on_every_inbox_route(company, outsider):
    followup = open_followup(company)
    rule = AlertRule.objects.for_company(company).get()
    routes = [
        ("list", {}),
        ("bulk", {}),
        ("rules", {}),
        ("rule-create", {}),
        ("followup", {"followup_id": followup.public_id}),
        ("assign", {"followup_id": followup.public_id}),
        ("status", {"followup_id": followup.public_id}),
        ("note", {"followup_id": followup.public_id}),
        ("rule-edit", {"rule_id": rule.public_id}),
        ("rule-delete", {"rule_id": rule.public_id}),
    ]
    for name, kwargs in routes:
        ours = url(company, name, **kwargs)
        theirs = url(outsider.company, name, **kwargs)  # their slug, our object
        assert outsider.client.get(ours).status_code == 404, ours
        got = outsider.client.post(ours, {"assignee": "me", "status": "resolved"})
        assert got.status_code == 404, ours
        if kwargs:  # their own page with our object in it: as if it did not exist
            for method in ("get", "post"):
                got = getattr(outsider.client, method)(theirs, {"assignee": "me"})
                assert got.status_code in {404, 405}, (method, theirs, got)
    followup.refresh_from_db()
    assert followup.status == "new"
    assert AlertRule.objects.for_company(company).filter(pk=rule.pk).exists()


def test_anonymous_visitors_are_sent_to_login(company):
    response = Client().get(url(company, "list"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- Navigation count and query counts --------------------------------------------------------


def test_navigation_shows_the_waiting_count(company, personas):
    open_followup(company)
    unassigned = open_followup(company)
    Followup.objects.for_company(company).filter(pk=unassigned.pk).update(assignee=None)
    admin_page = personas[Role.ADMIN].client.get(reverse("companies:overview", args=[company.slug]))
    agent_page = personas[Role.AGENT].client.get(reverse("companies:overview", args=[company.slug]))
    # The admin: only the unassigned one waits for them; the agent: theirs and the unassigned.
    assert 'data-testid="nav-inbox"' in admin_page.content.decode()
    assert '">1</span></a>' in _nav(admin_page)
    assert '">2</span></a>' in _nav(agent_page)


def _nav(page) -> str:
    body = page.content.decode()
    start = body.index('data-testid="nav-inbox"')
    return body[start : body.index("</a>", start) + 4]


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_inbox_and_follow_up_queries_stay_constant(company, personas):
    agent = personas[Role.AGENT].client
    survey = make_survey(company)
    first = [open_followup(company, comment=f"c{i}", survey=survey) for i in range(3)]
    list_url = url(company, "list") + "?view=all"
    detail_url = url(company, "followup", followup_id=first[0].public_id)
    agent.post(url(company, "note", followup_id=first[0].public_id), {"body": "one"})
    small_list, small_detail = _queries(agent, list_url), _queries(agent, detail_url)
    for i in range(15):
        open_followup(company, comment=f"more{i}", survey=make_survey(company, name=f"S{i}"))
    for i in range(10):
        agent.post(url(company, "note", followup_id=first[0].public_id), {"body": f"n{i}"})
    assert _queries(agent, list_url) == small_list
    assert _queries(agent, detail_url) == small_detail


def test_counts_without_a_membership_count_nothing_as_mine(company):
    from responses.followups_selectors import inbox_counts

    open_followup(company)
    counts = inbox_counts(company=company, membership=None)
    assert counts["mine"] == 0
    assert counts["all"] == 1
