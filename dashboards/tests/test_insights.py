"""Revenue at risk, the peer benchmark and the dashboard settings page."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from companies.models import Company, Industry
from companies.services import company_create, user_create
from dashboards.insights import (
    dashboard_settings_of,
    dashboard_settings_update,
    peer_benchmark,
    revenue_at_risk,
)
from dashboards.services import rollup_fold
from responses.models import Response, category_of
from surveys.models import Contact, Survey, SurveyKind, SurveyStatus

pytestmark = pytest.mark.django_db

NOW = "2026-06-15T12:00:00+00:00"


def _survey(company: Company, **fields: Any) -> Survey:
    return Survey.objects.create(
        company=company, name=fields.pop("name", "Customers"), status=SurveyStatus.ACTIVE, **fields
    )


def _answer(survey: Survey, contact: Contact | None, score: int, *, days_ago: int, **props: Any):
    when = timezone.now() - timedelta(days=days_ago, minutes=len(props))
    return Response.objects.create(
        company=survey.company,
        survey=survey,
        contact=contact,
        score=score,
        category=category_of(score),
        channel="email",
        browser_key=None if contact else uuid.uuid4().hex,
        contact_properties=props,
        created_at=when,
        updated_at=when,
    )


@time_machine.travel(NOW, tick=False)
def test_revenue_at_risk_counts_each_customer_by_their_latest_answer(company: Company) -> None:
    survey = _survey(company)
    ann, bob, cat, dan = (
        Contact.objects.create(company=company, email=f"{n}@x.test") for n in "abcd"
    )
    _answer(survey, ann, 9, days_ago=20, spend=1000)
    _answer(survey, ann, 3, days_ago=2, spend=1200)  # latest: detractor, 1200 counts
    _answer(survey, bob, 2, days_ago=10, spend=500)
    _answer(survey, bob, 10, days_ago=1, spend=500)  # recovered: not at risk
    _answer(survey, cat, 8, days_ago=3, spend=300.5)
    _answer(survey, dan, 1, days_ago=3, spend="a lot")  # not a number: customer, no sum
    _answer(survey, None, 0, days_ago=3, spend=9999)  # anonymous web answer: nobody named
    staff = _survey(company, name="Pulse", kind=SurveyKind.ENPS, anonymous=True)
    _answer(staff, cat, 0, days_ago=1, spend=777)  # anonymous survey: never counted
    today = timezone.localdate()
    risk = revenue_at_risk(
        company=company, property_name="spend", since=today - timedelta(days=29), until=today
    )
    assert risk is not None
    assert (risk.detractors.customers, risk.detractors.total) == (2, 1200.0)
    assert (risk.passives.customers, risk.passives.total) == (1, 300.5)
    assert revenue_at_risk(company=company, property_name="", since=today, until=today) is None


def _peer(name: str, industry: str, scores: list[int], *, opted: bool = True) -> Company:
    owner = user_create(email=f"{name}@peers.test", password="a-long-password-123")
    company = company_create(name=name, owner=owner, industry=industry)
    survey = _survey(company)
    for n, score in enumerate(scores):
        _answer(survey, None, score, days_ago=1 + n % 20)
    dashboard_settings_update(company=company, revenue_property="", peer_benchmark=opted)
    return company


@time_machine.travel(NOW, tick=False)
def test_peer_benchmark_needs_five_opted_in_companies_and_rounds(company: Company) -> None:
    today = timezone.localdate()
    since = today - timedelta(days=29)
    # Four retail peers with enough answers, one with too few, one not opted in, one other
    # industry: not enough yet.
    peers = [_peer(f"r{n}", Industry.RETAIL, [10] * (10 + 5 * n) + [0] * 20) for n in range(4)]
    _peer("few", Industry.RETAIL, [10] * 10)
    _peer("shy", Industry.RETAIL, [10] * 40, opted=False)
    _peer("bank", Industry.BANKING, [10] * 40)
    rollup_fold()
    assert peer_benchmark(company=peers[0], since=since, until=today) is None
    fifth = _peer("r4", Industry.RETAIL, [10] * 30 + [0] * 20)
    rollup_fold()
    benchmark = peer_benchmark(company=fifth, since=since, until=today)
    assert benchmark is not None
    assert benchmark.companies == 5
    for value in (benchmark.lower_quartile, benchmark.median, benchmark.upper_quartile):
        assert value % 5 == 0
    assert benchmark.lower_quartile <= benchmark.median <= benchmark.upper_quartile
    # A company that has not opted in sees nothing, whatever the others do.
    assert peer_benchmark(company=company, since=since, until=today) is None


@time_machine.travel(NOW, tick=False)
def test_settings_page_admins_write_members_read(
    personas: dict[str, Any], company: Company
) -> None:
    url = reverse("dashboards:settings", kwargs={"company_slug": company.slug})
    form = {"revenue_property": "yearly_spend", "peer_benchmark": "on"}
    assert personas["viewer"].client.get(url).status_code == 200
    assert personas["manager"].client.post(url, form).status_code == 403
    assert personas["admin"].client.post(url, form).status_code == 302
    dashboard = reverse("dashboards:dashboard", kwargs={"company_slug": company.slug})
    page = personas["viewer"].client.get(dashboard)
    assert page.context["peer_opt_in"] is True
    assert page.context["revenue"].property_name == "yearly_spend"


def test_settings_page_outsiders(outsider: Any, company: Company) -> None:
    url = reverse("dashboards:settings", kwargs={"company_slug": company.slug})
    assert outsider.client.get(url).status_code == 404
    assert outsider.client.post(url, {"revenue_property": "x"}).status_code == 404


def test_settings_page_sets_segment_properties(personas: dict[str, Any], company: Company) -> None:
    url = reverse("dashboards:settings", kwargs={"company_slug": company.slug})
    admin = personas["admin"].client
    form = {"revenue_property": "", "segment_properties": " plan, city,plan ,, "}
    assert admin.post(url, form).status_code == 302
    assert dashboard_settings_of(company=company).segment_properties == ["plan", "city"]
    assert 'value="plan, city"' in admin.get(url).content.decode()
    too_many = {**form, "segment_properties": "a, b, c, d, e, f"}
    page = admin.post(url, too_many)
    assert page.status_code == 200
    assert "At most 5 properties." in page.content.decode()
    assert dashboard_settings_of(company=company).segment_properties == ["plan", "city"]
