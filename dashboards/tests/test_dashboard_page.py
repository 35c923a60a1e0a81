"""/c/<slug>/dashboard/: figures, comparisons, segments, funnel, filters, roles, queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from companies.models import Company
from dashboards.charts import Scale, trend_chart
from dashboards.funnel import funnel_for
from responses.models import Response, category_of
from surveys.models import Contact, Invitation, Survey, SurveyKind, SurveyStatus
from surveys.tokens import new_nonce, token_for, token_hash

pytestmark = pytest.mark.django_db

NOW = "2026-06-15T12:00:00+00:00"


def _survey(company: Company, **fields: Any) -> Survey:
    return Survey.objects.create(
        company=company, name=fields.pop("name", "Customers"), status=SurveyStatus.ACTIVE, **fields
    )


def _answers(
    survey: Survey, scores: list[int], *, days_ago: int = 1, channel: str = "email", **extra: Any
) -> None:
    when = timezone.now() - timedelta(days=days_ago)
    Response.objects.bulk_create(
        Response(
            company=survey.company,
            survey=survey,
            score=score,
            category=category_of(score),
            channel=channel,
            browser_key=f"{survey.pk}-{days_ago}-{channel}-{n}-{score}-{extra.get('tag', '')}",
            contact_properties=extra.get("properties", {}),
            comment=extra.get("comment", ""),
            created_at=when,
            updated_at=when,
        )
        for n, score in enumerate(scores)
    )


def _url(company: Company) -> str:
    return reverse("dashboards:dashboard", kwargs={"company_slug": company.slug})


@time_machine.travel(NOW, tick=False)
def test_headline_breakdown_and_latest_comments(personas: dict[str, Any], company: Company) -> None:
    survey = _survey(company)
    _answers(survey, [10] * 6 + [8] * 3 + [2], comment="Great coffee")  # NPS 50
    page = personas["viewer"].client.get(_url(company))
    assert page.status_code == 200
    metrics = page.context["metrics"]
    assert (metrics["nps"], metrics["response_count"], metrics["low_sample"]) == (50.0, 10, True)
    body = page.content.decode()
    assert 'data-testid="low-sample"' in body
    assert "Great coffee" in body
    assert "Favourable (above 20)" in body


@time_machine.travel(NOW, tick=False)
def test_a_change_shows_up_or_down_only_when_significant(
    personas: dict[str, Any], company: Company
) -> None:
    survey = _survey(company)
    _answers(survey, [10] * 80 + [3] * 20, days_ago=2)  # NPS 60 in the last 30 days
    _answers(survey, [10] * 30 + [3] * 70, days_ago=40)  # NPS −40 in the 30 days before
    client = personas["viewer"].client
    body = client.get(_url(company), {"period": "30"}).content.decode()
    assert "▲ +100.0" in body
    # The same counts, tiny samples: no arrow, "not significant".
    other = _survey(company, name="Small")
    _answers(other, [10, 10, 3], days_ago=2, tag="s")
    _answers(other, [10, 3, 3], days_ago=40, tag="s")
    small = client.get(_url(company), {"period": "30", "survey": other.public_id})
    text = small.content.decode()
    assert "▲" not in text
    assert "▼" not in text
    assert "not significant" in text
    # NPS 33 against −33: the change carries its sign even when it is not significant.
    assert "+66.7 · not significant" in text


@time_machine.travel(NOW, tick=False)
def test_segments_by_property_and_anonymous_small_groups_hidden(
    personas: dict[str, Any], company: Company
) -> None:
    survey = _survey(company)
    _answers(survey, [10, 10, 9], properties={"city": "Almaty"}, tag="a")
    _answers(survey, [0, 5], properties={"city": "Astana"}, tag="b")
    client = personas["viewer"].client
    page = client.get(_url(company), {"segment": "property:city"})
    rows = {row["name"]: row["response_count"] for row in page.context["segments"]}
    assert rows == {"Almaty": 3, "Astana": 2}
    staff = _survey(company, name="Pulse", kind=SurveyKind.ENPS, anonymous=True)
    _answers(staff, [9] * 6, properties={"team": "Kitchen"}, tag="k")
    _answers(staff, [3] * 2, properties={"team": "Office"}, tag="o")
    pulse = client.get(_url(company), {"segment": "property:team", "survey": staff.public_id})
    assert [row["name"] for row in pulse.context["segments"]] == ["Kitchen"]
    assert 'data-testid="segments-hidden"' in pulse.content.decode()


@time_machine.travel(NOW, tick=False)
def test_a_bad_custom_range_is_a_form_error(personas: dict[str, Any], company: Company) -> None:
    page = personas["viewer"].client.get(
        _url(company), {"period": "custom", "since": "2026-06-10", "until": "2026-06-01"}
    )
    assert page.status_code == 200
    assert "The end is before the start." in page.content.decode()
    missing = personas["viewer"].client.get(_url(company), {"period": "custom"})
    assert "Choose both dates of the custom range." in missing.content.decode()


@time_machine.travel(NOW, tick=False)
def test_queries_stay_constant_as_answers_grow(personas: dict[str, Any], company: Company) -> None:
    survey = _survey(company)
    client = personas["viewer"].client
    query = {"period": "90", "segment": "property:city"}

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(_url(company), query).status_code == 200
        return len(captured)

    _answers(survey, [9, 3], properties={"city": "A"}, tag="0")
    few = queries()
    for day in range(1, 60):
        _answers(survey, [day % 11, 10, 7], days_ago=day, properties={"city": f"C{day % 7}"})
    assert queries() == few


def test_outsiders_and_anonymous_visitors(outsider: Any, company: Company, client: Any) -> None:
    assert outsider.client.get(_url(company)).status_code == 404
    assert client.get(_url(company)).status_code == 302


@time_machine.travel(NOW, tick=False)
def test_funnel_counts_per_channel(company: Company, other_company: Company) -> None:
    survey = _survey(company)
    contact = Contact.objects.create(company=company, email="ann@x.test")
    sent = timezone.now() - timedelta(days=3)

    def invitation(channel: str, **stamps: Any) -> None:
        nonce = new_nonce()
        Invitation.objects.create(
            company=company,
            survey=survey,
            contact=contact,
            channel=channel,
            token_nonce=nonce,
            token_hash=token_hash(token_for(nonce)),
            status="sent",
            sent_at=sent,
            **stamps,
        )

    invitation("email", delivered_at=sent, opened_at=sent, answered_at=sent)
    invitation("email", delivered_at=sent)
    invitation("sms", answered_at=sent)  # no delivery report, answered all the same
    today = timezone.localdate()
    rows = {r["channel"]: r for r in funnel_for(company=company, since=today - timedelta(days=6))}
    assert (rows["email"]["sent"], rows["email"]["opened"], rows["email"]["answered"]) == (2, 1, 1)
    assert rows["email"]["response_rate"] == 50.0
    assert (rows["sms"]["delivered"], rows["sms"]["answered"]) == (1, 1)
    assert funnel_for(company=other_company) == []
    assert funnel_for(company=company, since=today) == []


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("language", ["en", "ru", "kk"])
def test_svg_numbers_are_never_localised(
    personas: dict[str, Any], company: Company, language: str
) -> None:
    # Russian and Kazakh write a decimal comma: in SVG coordinates ("192,0") it broke the
    # chart (labels clipped, dots and bars gone). What a machine reads stays 192.0.
    import re
    from html.parser import HTMLParser

    survey = _survey(company)
    for days_ago in (2, 9, 16, 23):
        _answers(survey, [10, 9, 7, 3, 10][: 2 + days_ago % 4], days_ago=days_ago)
    client = personas["viewer"].client
    client.cookies["django_language"] = language
    page = client.get(_url(company))
    assert page.status_code == 200
    numeric = {"x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height"}
    found: list[tuple[str, str, str]] = []

    class Svg(HTMLParser):
        depth = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "svg":
                self.depth += 1
            if self.depth:
                found.extend((tag, k, v or "") for k, v in attrs if k in numeric | {"viewbox", "d"})

        def handle_endtag(self, tag: str) -> None:
            if tag == "svg":
                self.depth -= 1

    Svg().feed(page.content.decode())
    assert any(tag == "circle" for tag, _k, _v in found)  # the trend chart was drawn
    # The axis' month names are the page's language, not the server's C locale.
    labels = " ".join(label.text for label in page.context["chart"].labels)
    if language == "ru":
        assert re.search("мая|май|июн", labels, re.IGNORECASE), labels
    elif language == "kk":  # мамыр, маусым
        assert re.search("Мам|Мау", labels), labels
    else:
        assert re.search("May|Jun", labels), labels
    number = r"-?\d+(\.\d+)?"
    for tag, name, value in found:
        if name in numeric:
            assert re.fullmatch(number, value), (tag, name, value)
        else:  # viewBox and path data: numbers between commands, spaces and "x,y" commas
            tokens = [t for t in re.split(r"[MLHVZ ]+", value) if t]
            for token in tokens:
                assert re.fullmatch(rf"{number}(,{number})?", token), (tag, name, value)


@time_machine.travel(NOW, tick=False)
def test_the_period_shown_is_the_period_counted(personas: dict[str, Any], company: Company) -> None:
    from html.parser import HTMLParser

    survey = _survey(company)
    _answers(survey, [10, 10], days_ago=3)
    _answers(survey, [0], days_ago=20)  # inside 30 days, outside 7
    client = personas["viewer"].client

    def shown(page: Any) -> str:
        selected: list[str] = []

        class Period(HTMLParser):
            inside = False

            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                found = dict(attrs)
                if tag == "select":
                    self.inside = found.get("name") == "period"
                elif tag == "option" and self.inside and "selected" in found:
                    selected.append(found.get("value") or "")

        Period().feed(page.content.decode())
        return selected[0] if selected else ""

    first = client.get(_url(company))
    assert first.context["metrics"]["response_count"] == 3  # the default covers 30 days
    assert shown(first) == "30"
    # Show pressed without touching anything submits what the control shows: the same figures.
    again = client.get(_url(company), {"period": shown(first)})
    assert shown(again) == "30"
    assert again.context["metrics"]["response_count"] == 3


@pytest.mark.parametrize("language", ["en", "ru", "kk"])
def test_benchmarks_speak_of_the_company_in_words(
    personas: dict[str, Any], company: Company, language: str
) -> None:
    # A tea house (hospitality) was shown airlines and car rental, labelled with the data
    # file's codes ("industry_avg_nps") and years such as "n/a" or "~5 yrs to publication".
    client = personas["viewer"].client
    client.cookies["django_language"] = language
    company.industry = "hospitality"
    company.save(update_fields=["industry"])
    card = client.get(_url(company)).content.decode().split('data-testid="benchmarks"')[1]
    card = card.split("</section>")[0]
    for leaked in ("Airlines", "Car rental", "_nps", "n/a", "yrs to publication", "Global"):
        assert leaked not in card, leaked
    words = {
        "en": ("All industries", "Airlines", "industry average"),
        "ru": ("Все отрасли", "Авиакомпании", "среднее по отрасли"),
        "kk": ("Барлық салалар", "Әуе компаниялары", "сала бойынша орташа"),
    }[language]
    assert words[0] in card
    company.industry = "travel"
    company.save(update_fields=["industry"])
    card = client.get(_url(company)).content.decode().split('data-testid="benchmarks"')[1]
    card = card.split("</section>")[0]
    assert words[1] in card  # the source's industry name too, in the reader's language
    assert words[2] in card
    assert "_nps" not in card


@time_machine.travel(NOW, tick=False)
def test_archived_surveys_are_marked_in_the_filter_lists(
    personas: dict[str, Any], company: Company
) -> None:
    current = _survey(company, name="Customers 2026")
    old = _survey(company, name="Customers 2025")
    _answers(current, [9])
    _answers(old, [3])
    old.status = SurveyStatus.ARCHIVED
    old.save(update_fields=["status"])
    client = personas["manager"].client
    pages = [
        client.get(_url(company)),
        client.get(reverse("responses:list", kwargs={"company_slug": company.slug})),
        client.get(reverse("inbox:list", kwargs={"company_slug": company.slug}) + "?view=all"),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        assert "Customers 2025 (archived)</option>" in body
        assert "Customers 2026</option>" in body
    client.cookies["django_language"] = "ru"
    assert "Customers 2025 (в архиве)</option>" in client.get(_url(company)).content.decode()


@pytest.mark.parametrize(
    ("language", "shown"), [("en", "NPS 12.5"), ("ru", "NPS 12,5"), ("kk", "NPS 12,5")]
)
def test_the_dots_tooltips_write_numbers_the_readers_way(language: str, shown: str) -> None:
    # The coordinates stay 192.0 (machine-read); the tooltip is read by a person.
    from datetime import date

    from django.utils import translation

    start = date(2026, 1, 1)
    point = {"start": start, "end": start, "response_count": 8, "nps": 12.5,
             "ci95": {"low": 2.5, "high": 22.5}, "low_sample": True}  # fmt: skip
    with translation.override(language):
        chart = trend_chart([point])  # type: ignore[list-item]
    [(_x, _y, title)] = chart.dots
    assert shown in title


def test_trend_chart_geometry() -> None:
    from datetime import date

    def point(day: int, nps: float | None, n: int) -> Any:
        interval = None if nps is None else {"low": nps - 10, "high": nps + 10}
        start = date(2026, 1, day)
        return {"start": start, "end": start, "response_count": n, "nps": nps, "ci95": interval,
                "low_sample": n < 30}  # fmt: skip

    points = [point(1, 20, 10), point(2, 30, 20), point(3, None, 0), point(4, 40, 40)]
    chart = trend_chart(points)
    assert len(chart.lines) == 2  # broken where a day had no answer
    assert len(chart.dots) == 3
    assert [bar.count for bar in chart.bars] == [10, 20, 0, 40]
    assert max(bar.height for bar in chart.bars) == chart.bars_bottom - chart.bars_top
    scale = Scale.around([10, 50])
    assert (scale.low, scale.high) == (0, 75)
    assert scale.y(75) < scale.y(0)
    assert Scale.around([-100, 100]) == Scale(-100, 100)
    assert Scale.around([]) == Scale(-100, 100)


@time_machine.travel(NOW, tick=False)
def test_trend_csv_has_the_figures_of_the_page(personas: dict[str, Any], company: Company) -> None:
    survey = _survey(company)
    _answers(survey, [10, 10, 0], days_ago=1)
    _answers(survey, [7], days_ago=3, tag="b")
    client = personas["viewer"].client
    url = reverse("dashboards:trend-csv", kwargs={"company_slug": company.slug})
    response = client.get(url, {"period": "7", "trend": "day"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "start,end,response_count,nps,ci95_low,ci95_high,low_sample"
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert len(rows) == 7
    assert rows["2026-06-14"][2:4] == ["3", repr(100 * (2 - 1) / 3)]
    assert rows["2026-06-12"][2:4] == ["1", "0.0"]
    assert rows["2026-06-13"][2:4] == ["0", ""]
    assert client.post(url).status_code == 405
