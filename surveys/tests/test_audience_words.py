"""A campaign's audience is shown in words in the page's language, not as stored JSON."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from responses.tests.conftest import make_survey
from surveys.services.campaigns import campaign_create

pytestmark = pytest.mark.django_db

AUDIENCE = {
    "filters": [
        {"property": "segment", "op": "in", "value": ["sms-test"]},
        {"property": "visits", "op": "in", "value": ["30", 30]},
        {"property": "plan", "op": "in", "value": ["gold", "silver"]},
        {"property": "city", "op": "neq", "value": "Almaty"},
        {"property": "email_ok", "op": "exists"},
    ]
}


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "Segment is sms-test",
                "Visits is 30",
                "Plan is one of gold, silver",
                "Email_ok is set",
                "City is not Almaty",
            ],
        ),
        # The words are translated from the catalogue; the stored form never shows.
        ("ru", ["sms-test", "gold, silver"]),
    ],
)
def test_campaign_audience_reads_as_words(company, owner, language, expected):
    campaign = campaign_create(
        company=company,
        survey=make_survey(company),
        audience=AUDIENCE,
        scheduled_for=timezone.now() + timedelta(days=3),
    )
    owner.client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    html = owner.client.get(
        reverse(
            "surveys:campaign",
            kwargs={"company_slug": company.slug, "campaign_id": campaign.public_id},
        )
    ).content.decode()
    for text in expected:
        assert text in html
    for leaked in ("['sms-test']", "[&#x27;sms-test&#x27;]", " in <code>", "exists"):
        assert leaked not in html


def test_contact_properties_read_as_words(company, owner):
    from responses.tests.conftest import make_contact

    contact = make_contact(company, properties={"tags": ["vip", "north"], "newsletter": True})
    html = owner.client.get(
        reverse(
            "contacts:detail",
            kwargs={"company_slug": company.slug, "contact_id": contact.public_id},
        )
    ).content.decode()
    assert "vip, north" in html
    assert "[&#x27;vip" not in html
    assert "['vip" not in html
    assert ">yes<" in html
