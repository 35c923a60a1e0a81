"""/c/<slug>/responses/: list, filters, NPS summary, keyset pages, roles and outsiders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from companies.models import Role
from responses import views
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db


def _answer(survey, email: str, score: int, comment: str = ""):
    invitation, _token = make_invitation(
        survey, make_contact(survey.company, email, name=email.split("@", maxsplit=1)[0].title())
    )
    return response_record(
        invitation=invitation,
        survey=survey,
        score=score,
        comment=comment,
        channel="email",
        language="en",
    )


def _url(company, **query) -> str:
    url = reverse("responses:list", kwargs={"company_slug": company.slug})
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return url


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_every_member_reads(personas, company, role):
    survey = make_survey(company)
    _answer(survey, "ann@c.test", 9, "Great beans")
    page = personas[role].client.get(_url(company))
    assert page.status_code == 200
    assert "Great beans" in page.content.decode()


def test_outsider_404_and_anonymous_login(outsider, company, client):
    make_survey(company)
    assert outsider.client.get(_url(company)).status_code == 404
    anon = client.get(_url(company))
    assert anon.status_code == 302
    assert "/accounts/login/" in anon["Location"]


def test_summary_filters_and_identity(viewer, company):
    shop = make_survey(company, name="Shop")
    staff = make_survey(company, name="Staff pulse", anonymous=True, kind="enps")
    _answer(shop, "ann@c.test", 10, "love it")
    _answer(shop, "bob@c.test", 9)
    _answer(shop, "cat@c.test", 7)
    _answer(shop, "dan@c.test", 2, "too slow")
    _answer(staff, "secret.employee@acme.test", 3, "my manager")
    html = viewer.client.get(_url(company, survey=shop.public_id)).content.decode()
    # 2 promoters, 1 passive, 1 detractor of 4 → NPS 25.
    assert 'data-testid="nps">25<' in html
    assert "50%" in html
    assert "25%" in html
    assert "Ann" in html
    assert "my manager" not in html
    detractors = viewer.client.get(_url(company, category="detractor")).content.decode()
    assert "too slow" in detractors
    assert "my manager" in detractors
    assert "love it" not in detractors
    # The anonymous survey's respondent never appears.
    assert "Secret.Employee" not in detractors
    assert "secret.employee" not in detractors
    assert "Anonymous" in detractors


def test_keyset_pages_in_constant_queries(viewer, company, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    survey = make_survey(company)
    for i in range(4):
        _answer(survey, f"p{i}@c.test", i, f"comment-{i}")
    viewer.client.get(_url(company))  # warm up the session/ membership caches
    with CaptureQueriesContext(connection) as small:
        first = viewer.client.get(_url(company)).content.decode()
    for i in range(4, 8):
        _answer(survey, f"p{i}@c.test", i, f"comment-{i}")
    with CaptureQueriesContext(connection) as large:
        viewer.client.get(_url(company))
    assert len(large) == len(small)
    assert "comment-3" in first
    assert "comment-0" not in first
    page1 = viewer.client.get(_url(company)).content.decode()
    assert all(f"comment-{i}<" in page1 for i in (7, 6, 5))
    import re

    found = re.search(r'href="\?([^"]+)" rel="next"', page1)
    assert found is not None
    next_link = found.group(1).replace("&amp;", "&")
    page2 = viewer.client.get(_url(company) + "?" + next_link).content.decode()
    assert all(f"comment-{i}<" in page2 for i in (4, 3, 2))
    assert "comment-5<" not in page2


def test_no_responses_says_so(viewer, company):
    html = viewer.client.get(_url(company)).content.decode()
    assert "No responses yet." in html


def test_mainnav_links_to_responses(viewer, company):
    html = viewer.client.get(
        reverse("companies:overview", kwargs={"company_slug": company.slug})
    ).content.decode()
    assert _url(company) in html


def test_verbatim_filters_search_score_property_and_period(viewer, company):
    shop = make_survey(company, name="Shop")
    for email, score, comment, city in (
        ("ann@c.test", 3, "The coffee was cold and the queue long", "Almaty"),
        ("bob@c.test", 9, "Лучший кофе в городе", "Almaty"),
        ("cat@c.test", 4, "Кофе холодный, очередь длинная", "Astana"),
        ("dan@c.test", 10, "", "Astana"),
    ):
        response = _answer(shop, email, score, comment)
        response.contact_properties = {"city": city, "visits": 3}
        response.save(update_fields=["contact_properties"])

    def comments(**query) -> set[str]:
        page = viewer.client.get(_url(company, **query))
        assert page.status_code == 200
        return {r.comment for r in page.context["responses"]}

    # Every word must appear, in any language; case does not matter.
    assert comments(q="COFFEE cold") == {"The coffee was cold and the queue long"}
    assert comments(q="кофе") == {"Лучший кофе в городе", "Кофе холодный, очередь длинная"}
    assert comments(q="кофе холодный") == {"Кофе холодный, очередь длинная"}
    assert comments(score="9") == {"Лучший кофе в городе"}
    assert comments(property="city", value="Astana") == {"Кофе холодный, очередь длинная", ""}
    assert comments(property="visits", value="3", with_comment="1") == {
        "The coffee was cold and the queue long",
        "Лучший кофе в городе",
        "Кофе холодный, очередь длинная",
    }
    today = timezone.localdate()
    assert len(comments(since=str(today - timedelta(days=1)), until=str(today))) == 4
    assert comments(since=str(today + timedelta(days=1))) == set()
    # Malformed values are ignored, never an error.
    assert len(comments(score="eleven", since="yesterday")) == 4
    # The export takes the same filters.
    export = viewer.client.get(
        reverse("responses:export-csv", kwargs={"company_slug": company.slug}), {"q": "кофе"}
    )
    assert b"".join(export.streaming_content).decode("utf-8-sig").count("\n") == 3


def test_summary_is_of_the_filtered_responses_with_n_and_interval(viewer, company):
    shop = make_survey(company, name="Shop")
    _answer(shop, "ann@c.test", 10, "love the beans")
    _answer(shop, "bob@c.test", 9)
    _answer(shop, "cat@c.test", 7, "fine beans")
    _answer(shop, "dan@c.test", 2, "cold beans")
    _answer(shop, "eve@c.test", 1)
    whole = viewer.client.get(_url(company, survey=shop.public_id)).content.decode()
    assert 'data-testid="nps">0<' in whole  # 2 promoters, 2 detractors of 5
    assert 'data-testid="nps-n">N = 5<' in whole
    assert 'data-testid="low-sample"' in whole
    assert "95% interval" in whole
    assert 'data-testid="nps-filtered"' not in whole
    assert '<td lang="en">English</td>' in whole  # the answer's language by name, not "en"
    # Only the answers with "beans" in the comment: 1 promoter, 1 passive, 1 detractor.
    beans = viewer.client.get(_url(company, survey=shop.public_id, q="beans")).content.decode()
    assert 'data-testid="nps-n">N = 3<' in beans
    assert 'data-testid="nps-filtered"' in beans
    high = viewer.client.get(_url(company, score="10")).content.decode()
    assert 'data-testid="nps">100<' in high
    assert 'data-testid="nps-n">N = 1<' in high
    none = viewer.client.get(_url(company, score="5")).content.decode()
    assert "No responses match these filters." in none


def test_summary_queries_stay_constant_with_filters(viewer, company):
    survey = make_survey(company)
    for i in range(3):
        _answer(survey, f"p{i}@c.test", i, f"words {i}")
    path = _url(company, q="words", category="detractor")
    viewer.client.get(path)
    with CaptureQueriesContext(connection) as small:
        viewer.client.get(path)
    for i in range(3, 9):
        _answer(survey, f"p{i}@c.test", i, f"words {i}")
    with CaptureQueriesContext(connection) as large:
        viewer.client.get(path)
    assert len(large) == len(small)
