"""Digests: when they are due (time zones, DST), what they say, in whose language, exactly
once, to whom (opted in, removed, extra addresses), the settings page and tenant isolation."""

from __future__ import annotations

import threading
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company, Membership, Role, User
from conftest import Persona, add_member, make_company
from dashboards.digests import (
    ADDRESS,
    MEMBER,
    digest_address_save,
    digest_send,
    digest_subscription_save,
    digests_dispatch_due,
    digests_due,
    latest_occurrence,
)
from dashboards.metrics import nps_interval
from dashboards.models import DigestAddress, DigestSubscription
from notifications.models import Delivery
from responses.models import Followup, FollowupStatus, Response, category_of
from surveys.models import Contact, Survey, SurveyStatus

pytestmark = pytest.mark.django_db

NY = zoneinfo.ZoneInfo("America/New_York")
ALMATY = zoneinfo.ZoneInfo("Asia/Almaty")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def subscribe(
    company: Company,
    user: User,
    *,
    frequency: str = "daily",
    weekday: int = 0,
    hour: int = 8,
    time_zone: str = "",
    last_sent_for: str = "",
) -> DigestSubscription:
    """A subscription made straight (the settings service would mark the current occurrence
    as sent; these tests choose what was sent)."""
    membership = Membership.objects.for_company(company).get(user=user)
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    return DigestSubscription.objects.create(
        company=company,
        membership=membership,
        frequency=frequency,
        weekday=weekday,
        hour=hour,
        last_sent_for=last_sent_for,
    )


def due_keys(now: datetime) -> dict[int, str]:
    return {d.object_id: d.key for d in digests_due(now=now) if d.kind == MEMBER}


def survey_of(company: Company, **fields: Any) -> Survey:
    return Survey.objects.create(
        company=company, name=fields.pop("name", "Customers"), status=SurveyStatus.ACTIVE, **fields
    )


def answers(
    survey: Survey,
    scores: list[int],
    *,
    at: datetime,
    comment: str = "",
    contact: Contact | None = None,
) -> list[Response]:
    return Response.objects.bulk_create(
        Response(
            company=survey.company,
            survey=survey,
            contact=contact,
            score=score,
            category=category_of(score),
            channel="email",
            browser_key=f"{survey.pk}-{at.isoformat()}-{n}-{score}-{comment[:10]}",
            comment=comment,
            created_at=at + timedelta(seconds=n),
            updated_at=at,
        )
        for n, score in enumerate(scores)
    )


@dataclass(frozen=True)
class Sent:
    subject: str
    text: str
    html: str
    headers: dict[str, str]


def digests_to(address: str) -> list[Sent]:
    """Digests handed to the email backend (Django's test backend: ``mail.outbox``)."""
    sent: list[Sent] = []
    for message in mail.outbox:
        if address not in message.to:
            continue
        html = next(
            (
                str(body)
                for body, kind in getattr(message, "alternatives", [])
                if kind == "text/html"
            ),
            "",
        )
        sent.append(
            Sent(str(message.subject), str(message.body), html, dict(message.extra_headers))
        )
    return sent


def digest_deliveries(company: Company) -> list[Delivery]:
    return [
        d
        for d in Delivery.objects.for_company(company).order_by("pk")
        if "digest" in (d.metadata or {})
    ]


# --- When: time zones and DST (pure) -------------------------------------------------------------


def test_daily_occurrence_is_the_local_hour_in_each_zone():
    # 08:00 in Almaty (UTC+5) is 03:00 UTC; in New York (EST in January) 13:00 UTC.
    before = latest_occurrence(
        frequency="daily", weekday=0, hour=8, zone=ALMATY, now=utc(2026, 1, 15, 2, 59)
    )
    after = latest_occurrence(
        frequency="daily", weekday=0, hour=8, zone=ALMATY, now=utc(2026, 1, 15, 3, 0)
    )
    assert before is not None
    assert before.key == "daily:2026-01-14"
    assert after is not None
    assert after.key == "daily:2026-01-15"
    assert after.at == utc(2026, 1, 15, 3, 0)
    ny = latest_occurrence(
        frequency="daily", weekday=0, hour=8, zone=NY, now=utc(2026, 1, 15, 12, 59)
    )
    assert ny is not None
    assert ny.key == "daily:2026-01-14"
    assert ny.at == utc(2026, 1, 14, 13, 0)


def test_weekly_occurrence_is_the_chosen_weekday():
    # 2026-06-17 is a Wednesday; weekly on Monday 08:00 New York (EDT: 12:00 UTC).
    occurrence = latest_occurrence(
        frequency="weekly", weekday=0, hour=8, zone=NY, now=utc(2026, 6, 17, 9, 0)
    )
    assert occurrence is not None
    assert occurrence.key == "weekly:2026-06-15"
    assert occurrence.at == utc(2026, 6, 15, 12, 0)
    # Monday 07:59 local: still the week before.
    early = latest_occurrence(
        frequency="weekly", weekday=0, hour=8, zone=NY, now=utc(2026, 6, 15, 11, 59)
    )
    assert early is not None
    assert early.key == "weekly:2026-06-08"
    assert (
        latest_occurrence(frequency="off", weekday=0, hour=8, zone=NY, now=utc(2026, 6, 15)) is None
    )


def test_dst_spring_forward_and_fall_back_in_new_york():
    # 2026-03-08: clocks go from 02:00 EST to 03:00 EDT. 08:00 that day is EDT (12:00 UTC),
    # the day before EST (13:00 UTC).
    day_before = latest_occurrence(
        frequency="daily", weekday=0, hour=8, zone=NY, now=utc(2026, 3, 7, 13, 0)
    )
    assert day_before is not None
    assert day_before.at == utc(2026, 3, 7, 13, 0)
    dst_day = latest_occurrence(
        frequency="daily", weekday=0, hour=8, zone=NY, now=utc(2026, 3, 8, 12, 0)
    )
    assert dst_day is not None
    assert dst_day.key == "daily:2026-03-08"
    # 02:00 does not exist that day: it reads as 03:00 EDT (07:00 UTC), not skipped.
    skipped = latest_occurrence(
        frequency="daily", weekday=0, hour=2, zone=NY, now=utc(2026, 3, 8, 7, 0)
    )
    assert skipped is not None
    assert skipped.key == "daily:2026-03-08"
    before_gap = latest_occurrence(
        frequency="daily", weekday=0, hour=2, zone=NY, now=utc(2026, 3, 8, 6, 59)
    )
    assert before_gap is not None
    assert before_gap.key == "daily:2026-03-07"
    # 2026-11-01: 01:00 happens twice; both times are the same occurrence (one digest).
    first = latest_occurrence(
        frequency="daily", weekday=0, hour=1, zone=NY, now=utc(2026, 11, 1, 5, 0)
    )
    second = latest_occurrence(
        frequency="daily", weekday=0, hour=1, zone=NY, now=utc(2026, 11, 1, 6, 30)
    )
    assert first is not None
    assert second is not None
    assert first.key == second.key == "daily:2026-11-01"
    assert first.at == utc(2026, 11, 1, 5, 0)


def test_due_per_member_time_zone_almaty_and_new_york_across_dst(company: Company):
    almaty = add_member(company, "almaty@acme.test", Role.VIEWER)
    new_york = add_member(company, "ny@acme.test", Role.MANAGER)
    a = subscribe(company, almaty, time_zone="Asia/Almaty", last_sent_for="daily:2026-03-07")
    n = subscribe(company, new_york, time_zone="America/New_York", last_sent_for="daily:2026-03-07")
    # 2026-03-08 02:59 UTC: 07:59 in Almaty, Saturday evening in New York: nobody.
    assert due_keys(utc(2026, 3, 8, 2, 59)) == {}
    # 03:00 UTC: 08:00 in Almaty.
    assert due_keys(utc(2026, 3, 8, 3, 0)) == {a.pk: "daily:2026-03-08"}
    # Almaty's went out. New York is on EDT from this morning: due at 12:00 UTC, not 13:00.
    with time_machine.travel(utc(2026, 3, 8, 3, 0), tick=False):
        assert digest_send(company=company, kind=MEMBER, object_id=a.pk)
    assert due_keys(utc(2026, 3, 8, 11, 59)) == {}
    assert due_keys(utc(2026, 3, 8, 12, 0)) == {n.pk: "daily:2026-03-08"}


def test_a_member_without_a_time_zone_follows_the_company(company: Company):
    company.time_zone = "Asia/Almaty"
    company.save(update_fields=["time_zone"])
    viewer = add_member(company, "v@acme.test", Role.VIEWER)
    sub = subscribe(company, viewer, time_zone="", last_sent_for="daily:2026-01-14")
    assert due_keys(utc(2026, 1, 15, 2, 59)) == {}
    assert due_keys(utc(2026, 1, 15, 3, 0)) == {sub.pk: "daily:2026-01-15"}


# --- What it says ---------------------------------------------------------------------------------


@pytest.fixture
def known_data(company: Company, other_company: Company) -> dict[str, Any]:
    """Company in UTC. Yesterday (2026-06-14): 6 promoters and 2 passives,
    plus a detractor with a comment, an eNPS detractor and a commented promoter (NPS 45.5); the
    day before: 30 detractors (NPS −100); earlier: 10 promoters. Follow-ups: two opened
    yesterday (one of them overdue now), one older and overdue, one resolved past due.
    Another company has answers that must never count."""
    survey = survey_of(company)
    enps = survey_of(company, name="Team pulse", anonymous=True)
    contact = Contact.objects.create(company=company, email="ann@customer.test", name="Ann Buyer")
    yesterday = utc(2026, 6, 14, 10, 0)
    answers(survey, [10, 10, 9, 9, 9, 9, 8, 7], at=yesterday)
    detractor = answers(survey, [2], at=yesterday, comment="Slow delivery", contact=contact)[0]
    answers(enps, [3], at=utc(2026, 6, 14, 9, 0), comment="My manager ignores me")
    answers(survey, [10], at=utc(2026, 6, 14, 12, 0), comment="Lovely coffee", contact=contact)
    answers(survey, [1] * 30, at=utc(2026, 6, 13, 10, 0))
    answers(survey, [10] * 10, at=utc(2026, 6, 1, 10, 0))
    answers(survey_of(other_company), [0] * 50, at=yesterday, comment="Globex secret")

    def followup(response: Response, created: datetime, due: datetime, **extra: Any) -> None:
        Followup.objects.create(
            company=company,
            response=response,
            survey=response.survey,
            score=response.score,
            created_at=created,
            due_at=due,
            **extra,
        )

    older = answers(survey, [4], at=utc(2026, 6, 10, 10, 0))[0]
    resolved = answers(survey, [5], at=utc(2026, 6, 9, 10, 0))[0]
    spare = Response.objects.for_company(company).filter(score=9).first()
    assert spare is not None
    followup(detractor, utc(2026, 6, 14, 10, 1), utc(2026, 6, 15, 1, 0))  # overdue at noon
    followup(spare, utc(2026, 6, 14, 11, 0), utc(2026, 6, 16, 11, 0))
    followup(older, utc(2026, 6, 10, 10, 1), utc(2026, 6, 12, 10, 0))  # overdue
    followup(
        resolved,
        utc(2026, 6, 9, 10, 1),
        utc(2026, 6, 11, 10, 0),
        status=FollowupStatus.RESOLVED,
        resolution="fixed",
    )
    return {"survey": survey}


def _send_daily(company: Company, user: User, *, when: datetime, **extra: Any) -> Sent:
    sub = subscribe(company, user, last_sent_for="", **extra)
    with time_machine.travel(when, tick=False):
        assert digest_send(company=company, kind=MEMBER, object_id=sub.pk)
    [message] = digests_to(user.email)
    return message


def test_daily_digest_content_for_a_known_data_set(
    company: Company, known_data: dict[str, Any], personas: dict[str, Persona]
):
    viewer = personas[Role.VIEWER].user
    message = _send_daily(company, viewer, when=utc(2026, 6, 15, 12, 0))
    html, text = message.html, message.text
    # Period: 7 promoters, 2 passives, 2 detractors (the eNPS one included) → NPS 45.5.
    assert 'data-digest="count">11 ' in html
    low_high = nps_interval([0, 0, 1, 1, 0, 0, 0, 1, 1, 4, 3])
    assert low_high is not None
    assert f"{low_high['low']:.1f} … {low_high['high']:.1f}" in html
    assert "45.5" in html
    assert "45.5" in message.subject
    # Against −100 the day before: significant, shown as up by 145.5 points.
    assert 'data-change="up"' in html
    assert "Up 145.5 points from -100.0" in text
    # All time: 11 + 30 + 10 + 2 (older answers with follow-ups) = 53 answers.
    all_time = html.split('data-digest="all-time">')[1].split("</td>")[0]
    assert "53 answers" in all_time
    # Follow-ups: two opened yesterday; overdue now: yesterday's first and the older one.
    assert "2 new, 2 overdue now" in html
    # Comments: detractors first (newest first), then the rest; the eNPS one anonymous.
    comments = html.split('data-digest="comment"')[1:]
    assert [c.split("<blockquote")[1].split(">")[1].split("<")[0] for c in comments] == [
        "Slow delivery",
        "My manager ignores me",
        "Lovely coffee",
    ]
    assert "Ann Buyer" in comments[0]
    assert "Ann Buyer" not in comments[1]
    assert "ann@customer.test" not in comments[1]
    # Links: the dashboard for that day, and where to change the digest.
    assert (
        f"/c/{company.slug}/dashboard/?period=custom&amp;since=2026-06-14&amp;until=2026-06-14"
        in html
    )
    assert settings.SITE_URL + reverse("dashboards:digest", args=[company.slug]) in text
    # Never another company's data.
    assert "Globex secret" not in html
    assert "Globex secret" not in text
    assert message.html.startswith("<!doctype html>")
    assert message.text.strip()


def test_weekly_digest_covers_the_seven_days_before(
    company: Company, known_data: dict[str, Any], personas: dict[str, Persona]
):
    # Monday 2026-06-15 08:00 UTC: the week 06-08 … 06-14 (11 + 30 + the 2 older answers).
    viewer = personas[Role.VIEWER].user
    message = _send_daily(
        company, viewer, when=utc(2026, 6, 15, 8, 0), frequency="weekly", weekday=0
    )
    assert 'data-digest="count">43 ' in message.html
    assert "since=2026-06-08&amp;until=2026-06-14" in message.html
    # The week before had the 10 promoters of 06-01.
    assert 'data-change="down"' in message.html


def test_a_change_that_is_not_significant_is_not_up_or_down(
    company: Company, personas: dict[str, Persona]
):
    survey = survey_of(company)
    answers(survey, [10, 9, 3], at=utc(2026, 6, 14, 10, 0))  # NPS 33.3
    answers(survey, [10, 3, 3], at=utc(2026, 6, 13, 10, 0))  # NPS −33.3
    message = _send_daily(company, personas[Role.AGENT].user, when=utc(2026, 6, 15, 12, 0))
    assert 'data-change="same"' in message.html
    assert "No significant change from -33.3" in message.text
    assert "Up " not in message.text
    assert "Down " not in message.text
    assert "low sample" in message.text


def test_russian_member_gets_the_digest_in_russian(
    company: Company, known_data: dict[str, Any], personas: dict[str, Persona]
):
    user = personas[Role.MANAGER].user
    user.language = "ru"
    user.save(update_fields=["language"])
    message = _send_daily(company, user, when=utc(2026, 6, 15, 12, 0))
    assert '<html lang="ru">' in message.html
    # Rendered under translation.override("ru"): Russian number and date formats.
    assert "45,5" in message.html
    assert "45,5" in message.subject
    assert "14 июня 2026" in message.subject
    # An English member's digest of the same period stays English.
    english = _send_daily(company, personas[Role.VIEWER].user, when=utc(2026, 6, 15, 12, 0))
    assert '<html lang="en">' in english.html
    assert "45.5" in english.subject


# --- Exactly once --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sends_of_one_digest_send_it_once():
    company = make_company("Race Roasters", "owner@race.test")
    owner = Membership.objects.for_company(company).get(role=Role.OWNER).user
    sub = subscribe(company, owner)
    barrier = threading.Barrier(4)
    results: list[bool] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait()
            results.append(
                digest_send(
                    company=company, kind=MEMBER, object_id=sub.pk, now=utc(2026, 6, 15, 9, 0)
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    assert len(digest_deliveries(company)) == 1
    sub.refresh_from_db()
    assert sub.last_sent_for == "daily:2026-06-15"


def test_dispatching_twice_sends_once_and_the_next_day_again(company: Company):
    owner = Membership.objects.for_company(company).get(role=Role.OWNER).user
    subscribe(company, owner)
    with time_machine.travel(utc(2026, 6, 15, 9, 0), tick=False):
        assert digests_dispatch_due() == 1  # eager tasks in tests: sent right away
        assert digests_dispatch_due() == 0
        from dashboards.tasks import digest_send as task

        sub = DigestSubscription.objects.for_company(company).get()
        assert task.delay(company.pk, MEMBER, sub.pk).get() is False
    with time_machine.travel(utc(2026, 6, 16, 7, 59), tick=False):
        assert digests_dispatch_due() == 0
    with time_machine.travel(utc(2026, 6, 16, 8, 0), tick=False):
        assert digests_dispatch_due() == 1
    assert len(digests_to(owner.email)) == 2
    assert len(digest_deliveries(company)) == 2


def test_the_beat_runs_the_dispatcher():
    entries = {e["task"]: e["schedule"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["dashboards.digests_dispatch_due"] <= 600


# --- Who -----------------------------------------------------------------------------------------


def test_opted_out_and_removed_members_get_nothing(company: Company):
    off = add_member(company, "off@acme.test", Role.VIEWER)
    leaving = add_member(company, "leaving@acme.test", Role.AGENT)
    staying = add_member(company, "staying@acme.test", Role.VIEWER)
    subscribe(company, off, frequency="off")
    gone = subscribe(company, leaving)
    subscribe(company, staying)
    blocked = add_member(company, "blocked@acme.test", Role.VIEWER)
    subscribe(company, blocked)
    blocked.is_active = False
    blocked.save(update_fields=["is_active"])
    Membership.objects.for_company(company).filter(user=leaving).delete()
    assert not DigestSubscription.objects.for_company(company).filter(pk=gone.pk).exists()
    with time_machine.travel(utc(2026, 6, 15, 9, 0), tick=False):
        assert digests_dispatch_due() == 1
        assert not digest_send(company=company, kind=MEMBER, object_id=gone.pk)
    assert digests_to("staying@acme.test")
    assert not digests_to("off@acme.test")
    assert not digests_to("leaving@acme.test")
    assert not digests_to("blocked@acme.test")


def test_extra_addresses_in_the_company_zone_and_language(company: Company):
    company.time_zone = "Asia/Almaty"
    company.default_language = "ru"
    company.save(update_fields=["time_zone", "default_language"])
    with time_machine.travel(utc(2026, 6, 14, 12, 0), tick=False):
        address = digest_address_save(
            company=company, email=" Boss@Example.test ", frequency="daily", weekday=0, hour=8
        )
    assert address.email == "boss@example.test"
    # 08:00 in Almaty is 03:00 UTC.
    assert [d for d in digests_due(now=utc(2026, 6, 15, 2, 59)) if d.kind == ADDRESS] == []
    with time_machine.travel(utc(2026, 6, 15, 3, 0), tick=False):
        assert digests_dispatch_due() == 1
    [message] = digests_to("boss@example.test")
    assert '<html lang="ru">' in message.html
    # No account: a one-click unsubscribe instead of the settings link.
    assert message.headers.get("List-Unsubscribe", "").startswith(f"<{settings.SITE_URL}/u/")
    assert message.headers.get("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert "/dashboard/digest/" not in message.text


def test_extra_address_of_a_kazakh_company_gets_kazakh(company: Company):
    company.default_language = "kk"
    company.save(update_fields=["default_language"])
    DigestAddress.objects.create(company=company, email="ops@example.test", frequency="daily")
    with time_machine.travel(utc(2026, 6, 15, 9, 0), tick=False):
        assert digests_dispatch_due() == 1
    [message] = digests_to("ops@example.test")
    assert '<html lang="kk">' in message.html  # the interface speaks Kazakh too


def test_each_company_digest_counts_only_its_own_data(company: Company, other_company: Company):
    answers(survey_of(company), [10, 10, 10], at=utc(2026, 6, 14, 10, 0))
    answers(survey_of(other_company), [0] * 7, at=utc(2026, 6, 14, 10, 0))
    ours = Membership.objects.for_company(company).get(role=Role.OWNER).user
    theirs = Membership.objects.for_company(other_company).get(role=Role.OWNER).user
    subscribe(company, ours)
    subscribe(other_company, theirs)
    with time_machine.travel(utc(2026, 6, 15, 9, 0), tick=False):
        assert digests_dispatch_due() == 2
    [mine] = digests_to(ours.email)
    [other] = digests_to(theirs.email)
    assert 'data-digest="count">3 ' in mine.html
    assert "100.0" in mine.subject
    assert 'data-digest="count">7 ' in other.html
    assert "-100.0" in other.subject
    assert len(digest_deliveries(company)) == 1
    assert len(digest_deliveries(other_company)) == 1


# --- Settings (service and page) -------------------------------------------------------------


def test_saving_settings_starts_with_the_next_occurrence(company: Company):
    viewer = add_member(company, "v@acme.test", Role.VIEWER)
    membership = Membership.objects.for_company(company).get(user=viewer)
    # Monday 10:00 New York: today's 08:00 has passed, so the first digest is tomorrow's.
    now = utc(2026, 6, 15, 14, 0)
    sub = digest_subscription_save(
        company=company,
        membership=membership,
        frequency="daily",
        weekday=0,
        hour=8,
        time_zone="America/New_York",
        now=now,
    )
    assert sub.last_sent_for == "daily:2026-06-15"
    assert due_keys(now) == {}
    assert due_keys(utc(2026, 6, 16, 12, 0)) == {sub.pk: "daily:2026-06-16"}
    viewer.refresh_from_db()
    assert viewer.time_zone == "America/New_York"
    # Moving the hour later the same day does not send today's digest a second time.
    sub = digest_subscription_save(
        company=company,
        membership=membership,
        frequency="daily",
        weekday=0,
        hour=9,
        time_zone="America/New_York",
        now=utc(2026, 6, 15, 14, 30),
    )
    assert sub.last_sent_for == "daily:2026-06-15"


def _page(company: Company) -> str:
    return reverse("dashboards:digest", kwargs={"company_slug": company.slug})


def test_any_member_sets_their_own_digest(
    company: Company, personas: dict[str, Persona], outsider: Persona
):
    viewer = personas[Role.VIEWER]
    page = viewer.client.get(_page(company))
    assert page.status_code == 200
    assert not DigestSubscription.objects.for_company(company).exists()  # a GET saves nothing
    assert b"digest-addresses" not in page.content  # extra addresses: admins only
    response = viewer.client.post(
        _page(company),
        {"frequency": "weekly", "weekday": "4", "hour": "17", "time_zone": "Asia/Almaty"},
    )
    assert response.status_code == 302
    sub = DigestSubscription.objects.for_company(company).get()
    assert sub.membership.user == viewer.user
    assert (sub.frequency, sub.weekday, sub.hour) == ("weekly", 4, 17)
    viewer.user.refresh_from_db()
    assert viewer.user.time_zone == "Asia/Almaty"
    # Invalid input is a form error, nothing saved.
    bad = viewer.client.post(_page(company), {"frequency": "hourly", "weekday": "9", "hour": "25"})
    assert bad.status_code == 200
    assert DigestSubscription.objects.for_company(company).get().frequency == "weekly"
    assert outsider.client.get(_page(company)).status_code == 404
    assert outsider.client.post(_page(company), {"frequency": "daily"}).status_code == 404


def test_the_dashboard_links_to_the_digest_page(company: Company, personas: dict[str, Persona]):
    response = personas[Role.VIEWER].client.get(
        reverse("dashboards:dashboard", kwargs={"company_slug": company.slug})
    )
    assert _page(company).encode() in response.content


def test_only_admins_manage_extra_addresses(
    company: Company, other_company: Company, personas: dict[str, Persona], outsider: Persona
):
    add = reverse("dashboards:digest-address-add", kwargs={"company_slug": company.slug})
    payload = {"email": "exec@example.test", "frequency": "weekly", "weekday": "0", "hour": "8"}
    for role in (Role.VIEWER, Role.AGENT, Role.MANAGER):
        assert personas[role].client.post(add, payload).status_code == 403
    assert outsider.client.post(add, payload).status_code == 404
    assert not DigestAddress.objects.for_company(company).exists()
    assert personas[Role.ADMIN].client.post(add, payload).status_code == 302
    address = DigestAddress.objects.for_company(company).get()
    assert (address.email, address.frequency) == ("exec@example.test", "weekly")
    page = personas[Role.ADMIN].client.get(_page(company))
    assert b"exec@example.test" in page.content
    # The address's form asks about the address, not about the reader ("Send me a digest").
    addresses = page.content.decode().split('data-testid="digest-addresses"')[1]
    assert "Send me a digest" not in addresses
    assert "Send this address a digest" in addresses
    delete = reverse(
        "dashboards:digest-address-delete",
        kwargs={"company_slug": company.slug, "digest_address_id": address.public_id},
    )
    assert personas[Role.MANAGER].client.post(delete).status_code == 403
    # The owner of another company, under their own slug, cannot reach our address.
    theirs = reverse(
        "dashboards:digest-address-delete",
        kwargs={"company_slug": other_company.slug, "digest_address_id": address.public_id},
    )
    assert outsider.client.post(theirs).status_code == 404
    assert DigestAddress.objects.for_company(company).exists()
    assert personas[Role.OWNER].client.post(delete).status_code == 302
    assert not DigestAddress.objects.for_company(company).exists()


def test_period_days_are_company_days(company: Company):
    """A member far east of the company gets the company's last complete day."""
    from dashboards.digests import digest_period

    company.time_zone = "America/New_York"
    company.save(update_fields=["time_zone"])
    # 08:00 Tuesday in Almaty is 23:00 Monday in New York: Sunday is the last complete day.
    since, until = digest_period(company=company, frequency="daily", at=utc(2026, 6, 16, 3, 0))
    assert since == until == date(2026, 6, 14)


class OutageBackend(BaseEmailBackend):
    """The mail server cannot be reached (the transport edge, nothing else faked)."""

    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("mail server down")


def test_a_digest_nothing_could_send_is_tried_again_by_the_next_beat(
    company: Company, settings: Any
):
    owner = Membership.objects.for_company(company).get(role=Role.OWNER).user
    sub = subscribe(company, owner, last_sent_for="daily:2026-06-14")
    settings.EMAIL_BACKEND = f"{__name__}.OutageBackend"
    with time_machine.travel(utc(2026, 6, 15, 9, 0), tick=False):
        assert not digest_send(company=company, kind=MEMBER, object_id=sub.pk)
        sub.refresh_from_db()
        assert sub.last_sent_for == "daily:2026-06-14"  # the claim was given back
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        assert digests_dispatch_due() == 1
        assert digests_dispatch_due() == 0
    assert len(digests_to(owner.email)) == 1
    sub.refresh_from_db()
    assert sub.last_sent_for == "daily:2026-06-15"


def test_a_digest_takes_the_same_queries_whatever_the_data(company: Company):
    owner = Membership.objects.for_company(company).get(role=Role.OWNER).user
    sub = subscribe(company, owner)
    survey = survey_of(company)
    answers(survey, [10, 3], at=utc(2026, 6, 14, 10, 0), comment="ok")

    def queries_to_send(day: int) -> int:
        with (
            time_machine.travel(utc(2026, 6, day, 9, 0), tick=False),
            CaptureQueriesContext(connection) as queries,
        ):
            assert digest_send(company=company, kind=MEMBER, object_id=sub.pk)
        return len(queries)

    small = queries_to_send(15)
    answers(survey, list(range(11)) * 20, at=utc(2026, 6, 15, 10, 0), comment="more")
    assert queries_to_send(16) == small
