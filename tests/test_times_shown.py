"""Times on the team's pages and in its emails: in the company's zone, labelled, written one
way per language; machine-read values stay ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from responses.followups import followups_escalate_overdue
from responses.models import Followup, Response
from responses.tests.test_inbox import open_followup
from surveys.services.campaigns import campaign_create

pytestmark = pytest.mark.django_db

# 20:30 UTC is 01:30 the next day in Almaty (UTC+5 all year).
ANSWERED = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
DUE = datetime(2026, 3, 12, 19, 5, tzinfo=UTC)
# A campaign may be scheduled at most a year ahead: two months from today, 20:45 UTC.
_DAY = (datetime.now(UTC) + timedelta(days=60)).date()
SCHEDULED = datetime.combine(_DAY, time(20, 45), tzinfo=UTC)
_LOCAL = _DAY + timedelta(days=1)
_RU_MONTHS = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]

SHOWN = {
    "en": {
        "answered": "11 Mar 2026, 01:30",
        "due": "13 Mar 2026, 00:05",
        "sched": f"{_LOCAL.day} {_LOCAL:%b %Y}, 01:45",
    },
    "ru": {
        "answered": "11 марта 2026, 01:30",
        "due": "13 марта 2026, 00:05",
        "sched": f"{_LOCAL.day} {_RU_MONTHS[_LOCAL.month - 1]} {_LOCAL.year}, 01:45",
    },
}


@pytest.fixture
def almaty(company):
    company.time_zone = "Asia/Almaty"
    company.save(update_fields=["time_zone"])
    return company


def _pages(company, followup: Followup) -> dict[str, str]:
    slug = company.slug
    return {
        "responses": reverse("responses:list", kwargs={"company_slug": slug}),
        "inbox": reverse("inbox:list", kwargs={"company_slug": slug}) + "?view=all",
        "followup": reverse(
            "inbox:followup", kwargs={"company_slug": slug, "followup_id": followup.public_id}
        ),
        "campaigns": reverse("surveys:campaigns", kwargs={"company_slug": slug}),
    }


@pytest.mark.parametrize("language", ["en", "ru"])
def test_pages_show_times_in_the_company_zone_in_one_format(almaty, owner, language):
    followup = open_followup(almaty, score=3, comment="Cold coffee")
    Response.objects.for_company(almaty).filter(pk=followup.response_id).update(
        created_at=ANSWERED, updated_at=ANSWERED
    )
    Followup.objects.for_company(almaty).filter(pk=followup.pk).update(due_at=DUE)
    campaign_create(
        company=almaty, survey=followup.survey, audience={"all": True}, scheduled_for=SCHEDULED
    )
    owner.client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    expected = SHOWN[language]
    wanted = {
        "responses": [expected["answered"]],
        "inbox": [expected["due"]],
        "followup": [expected["due"], expected["answered"]],
        "campaigns": [expected["sched"]],
    }
    for name, path in _pages(almaty, followup).items():
        html = owner.client.get(path).content.decode()
        for text in wanted[name]:
            assert text in html, (name, text)
        # Labelled once per page, and the machine-read value stays ISO 8601.
        assert "Asia/Almaty (UTC+05:00)" in html, name
        assert "UTC)" not in html.replace("(UTC+05:00)", ""), name
    html = owner.client.get(_pages(almaty, followup)["responses"]).content.decode()
    assert 'datetime="2026-03-11T01:30:00+05:00"' in html


def test_escalation_email_gives_the_due_time_in_the_company_zone(almaty, owner, mailoutbox):
    followup = open_followup(almaty, score=3)
    Followup.objects.for_company(almaty).filter(pk=followup.pk).update(due_at=DUE)
    mailoutbox.clear()
    assert followups_escalate_overdue() == 1
    escalations = [m for m in mailoutbox if "Overdue" in m.subject]
    assert escalations, [m.subject for m in mailoutbox]
    message = escalations[0]
    assert "13 Mar 2026, 00:05 — Asia/Almaty (UTC+05:00)" in message.body
    html = message.alternatives[0][0]
    assert "13 Mar 2026, 00:05" in str(html)
    assert "(UTC)" not in message.body
