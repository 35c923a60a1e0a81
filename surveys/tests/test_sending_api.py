"""The transactional trigger, invitations and campaigns over the API; the campaign pages."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from companies.models import Company
from conftest import KeyPersona, Persona
from notifications.models import Channel, SuppressionReason
from notifications.services import suppression_add
from surveys.models import Campaign, Contact, Invitation
from surveys.services.campaigns import campaign_create
from surveys.services.surveys import survey_create
from surveys.tests.sending_factories import active_survey, contacts

pytestmark = pytest.mark.django_db


def _post(client: Any, key: KeyPersona, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, body, content_type="application/json", **key.headers)


def _trigger_path(survey_id: str) -> str:
    return f"/api/v1/surveys/{survey_id}/invitations/"


def test_trigger_creates_the_contact_and_schedules(client: Any, api_owner: KeyPersona) -> None:
    survey = active_survey(api_owner.company)
    response = _post(
        client,
        api_owner,
        _trigger_path(survey.public_id),
        {"email": "Ann@Example.com", "name": "Ann", "properties": {"plan": "pro"}, "delay": 60},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["channel"] == "email"
    assert body["contact"]["email"] == "ann@example.com"
    invitation = Invitation.objects.for_company(api_owner.company).get(public_id=body["id"])
    assert invitation.properties == {"plan": "pro"}
    contact = Contact.objects.for_company(api_owner.company).get(email="ann@example.com")
    assert contact.properties == {"plan": "pro"}
    # Throttled the second time, sent anyway with force.
    again = _post(client, api_owner, _trigger_path(survey.public_id), {"email": "ann@example.com"})
    assert (again.status_code, again.json()) == (200, {"status": "throttled"})
    forced = _post(
        client,
        api_owner,
        _trigger_path(survey.public_id),
        {"email": "ann@example.com", "force": True},
    )
    assert forced.status_code == 201


def test_trigger_suppressed_address(client: Any, api_owner: KeyPersona) -> None:
    survey = active_survey(api_owner.company)
    suppression_add(
        company=api_owner.company,
        channel=Channel.EMAIL,
        address="gone@example.com",
        reason=SuppressionReason.UNSUBSCRIBED,
    )
    response = _post(
        client,
        api_owner,
        _trigger_path(survey.public_id),
        {"email": "gone@example.com", "force": True},
    )
    assert (response.status_code, response.json()) == (200, {"status": "suppressed"})
    assert not Invitation.objects.for_company(api_owner.company).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.com", "channel": "sms"}, "phone"),
        ({"email": "a@example.com", "channel": "whatsapp"}, "phone"),
        ({"email": "a@example.com", "channel": "pigeon"}, "channel"),
        ({"phone": "+77011234567"}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "delay": -1}, "delay"),
        ({"email": "a@example.com", "delay": 90 * 86400 + 1}, "delay"),
        ({"email": "a@example.com", "language": "de"}, "language"),
    ],
)
def test_trigger_validation(
    client: Any, api_owner: KeyPersona, body: dict[str, Any], field: str
) -> None:
    survey = active_survey(api_owner.company)
    response = _post(client, api_owner, _trigger_path(survey.public_id), body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Contact.objects.for_company(api_owner.company).exists()


def test_trigger_sms_schedules_a_text_invitation_for_the_phone(
    client: Any, api_owner: KeyPersona
) -> None:
    survey = active_survey(api_owner.company)
    body = {"phone": "+7 701 123 4567", "name": "Ann", "channel": "sms"}
    response = _post(client, api_owner, _trigger_path(survey.public_id), body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["channel"] == "sms"
    assert data["contact"]["phone"] == "+77011234567"
    assert data["contact"]["email"] is None
    # The same phone again finds the same contact (phone-only triggers match by number).
    again = _post(client, api_owner, _trigger_path(survey.public_id), {**body, "force": True})
    assert again.status_code == 201, again.content
    assert again.json()["contact"]["id"] == data["contact"]["id"]
    assert Contact.objects.for_company(api_owner.company).count() == 1


def test_trigger_sms_in_quiet_hours_answers_when_it_really_goes_out(
    client: Any, api_owner: KeyPersona
) -> None:
    """At 23:00 in Almaty (the number's zone) a text waits for 09:00: the answer says so."""
    survey = active_survey(api_owner.company)
    body = {"phone": "+7 701 123 4567", "channel": "sms"}
    with time_machine.travel(datetime(2026, 3, 2, 18, 0, tzinfo=UTC), tick=False):  # 23:00
        response = _post(client, api_owner, _trigger_path(survey.public_id), body)
    assert response.status_code == 201, response.content
    almaty = zoneinfo.ZoneInfo("Asia/Almaty")
    due = datetime.fromisoformat(response.json()["scheduled_for"]).astimezone(almaty)
    assert (due.date().isoformat(), due.hour, due.minute) == ("2026-03-03", 9, 0)
    invitation = Invitation.objects.for_company(api_owner.company).get()
    assert invitation.scheduled_for == due
    # By day it goes out at once.
    with time_machine.travel(datetime(2026, 3, 3, 6, 0, tzinfo=UTC), tick=False):  # 11:00
        again = _post(client, api_owner, _trigger_path(survey.public_id), {**body, "force": True})
    day = datetime.fromisoformat(again.json()["scheduled_for"])
    assert day == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)


def test_trigger_draft_survey_is_400(client: Any, api_owner: KeyPersona) -> None:
    draft = survey_create(company=api_owner.company, name="Draft")
    response = _post(client, api_owner, _trigger_path(draft.public_id), {"email": "a@example.com"})
    assert response.status_code == 400
    assert "draft" in str(response.json()["error"]["fields"]["survey"])


def test_trigger_outsider_404_and_read_only_403(
    client: Any, api_outsider: KeyPersona, api_viewer: KeyPersona
) -> None:
    survey = active_survey(api_viewer.company)
    outsider = _post(
        client, api_outsider, _trigger_path(survey.public_id), {"email": "a@example.com"}
    )
    assert outsider.status_code == 404
    read_only = _post(
        client, api_viewer, _trigger_path(survey.public_id), {"email": "a@example.com"}
    )
    assert read_only.status_code == 403
    assert not Invitation.objects.for_company(api_viewer.company).exists()
    assert not Contact.objects.for_company(api_viewer.company).exists()


def test_invitations_list_and_detail(
    client: Any, api_owner: KeyPersona, api_outsider: KeyPersona
) -> None:
    survey = active_survey(api_owner.company)
    other = active_survey(api_owner.company, kind="enps")
    for email in ("a@example.com", "b@example.com"):
        _post(client, api_owner, _trigger_path(survey.public_id), {"email": email})
    _post(client, api_owner, _trigger_path(other.public_id), {"email": "c@example.com"})
    listed = client.get(f"/api/v1/invitations/?survey={survey.public_id}", **api_owner.headers)
    assert listed.status_code == 200
    emails = {row["contact"]["email"] for row in listed.json()["results"]}
    assert emails == {"a@example.com", "b@example.com"}
    none_sent = client.get("/api/v1/invitations/?status=sent", **api_owner.headers).json()
    assert none_sent["results"] == []
    bad = client.get("/api/v1/invitations/?status=nope", **api_owner.headers)
    assert bad.status_code == 400
    one = listed.json()["results"][0]["id"]
    assert client.get(f"/api/v1/invitations/{one}/", **api_owner.headers).json()["id"] == one
    assert client.get(f"/api/v1/invitations/{one}/", **api_outsider.headers).status_code == 404
    assert client.get("/api/v1/invitations/", **api_outsider.headers).json()["results"] == []


def test_campaign_api_create_counts_and_isolation(
    django_capture_on_commit_callbacks: Any,
    client: Any,
    api_owner: KeyPersona,
    api_viewer: KeyPersona,
    api_outsider: KeyPersona,
) -> None:
    company = api_owner.company
    survey = active_survey(company)
    contacts(company, 3, properties={"plan": "pro"})
    Contact.objects.create(company=company, email="free@example.com", properties={"plan": "free"})
    body = {
        "survey": survey.public_id,
        "audience": {"filters": [{"property": "plan", "op": "eq", "value": "free"}]},
    }
    assert _post(client, api_viewer, "/api/v1/campaigns/", body).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):  # the expansion runs after commit
        created = _post(client, api_owner, "/api/v1/campaigns/", body)
    assert created.status_code == 201, created.content
    campaign_id = created.json()["id"]
    detail = client.get(f"/api/v1/campaigns/{campaign_id}/", **api_viewer.headers)
    counts = detail.json()["counts"]
    assert (counts["targeted"], counts["pending"] + counts["sent"]) == (1, 1)
    assert (
        client.get(f"/api/v1/campaigns/{campaign_id}/", **api_outsider.headers).status_code == 404
    )
    bad = _post(client, api_owner, "/api/v1/campaigns/", {**body, "audience": {"filters": "x"}})
    assert bad.status_code == 400
    assert "audience" in bad.json()["error"]["fields"]
    assert Campaign.objects.for_company(company).count() == 1


def test_send_page_creates_a_campaign_and_refuses_a_draft(
    personas: dict[str, Persona], outsider: Persona, company: Company
) -> None:
    survey = active_survey(company)
    contacts(company, 2)
    url = reverse(
        "surveys:send", kwargs={"company_slug": company.slug, "survey_id": survey.public_id}
    )
    form = {"when": "now", "audience": "all"}
    assert personas["viewer"].client.get(url).status_code == 200
    assert personas["agent"].client.post(url, form).status_code == 403
    assert outsider.client.get(url).status_code == 404
    preview = personas["manager"].client.post(url, form)
    assert preview.status_code == 200  # the counts first: nothing is sent without confirming
    assert not Campaign.objects.for_company(company).exists()
    page = preview.content.decode()
    confirm = {
        name: re.search(rf'name="{name}" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        for name in ("preview", "campaign_id")
    }
    response = personas["manager"].client.post(url, {**form, **confirm, "confirm": "1"})
    assert response.status_code == 302
    campaign = Campaign.objects.for_company(company).get()
    detail = personas["viewer"].client.get(response["Location"])
    assert detail.status_code == 200
    assert campaign.survey.name in detail.content.decode()
    listing = personas["viewer"].client.get(
        reverse("surveys:campaigns", kwargs={"company_slug": company.slug})
    )
    assert campaign.public_id in listing.content.decode()
    draft = survey_create(company=company, name="Draft")
    draft_url = reverse(
        "surveys:send", kwargs={"company_slug": company.slug, "survey_id": draft.public_id}
    )
    refused = personas["manager"].client.post(draft_url, form)
    assert refused.status_code == 200
    assert "draft" in refused.content.decode()
    assert Campaign.objects.for_company(company).count() == 1
    later = personas["manager"].client.post(url, {"when": "later", "audience": "all"})
    assert later.status_code == 200  # no date given: a field error
    assert Campaign.objects.for_company(company).count() == 1


def test_campaign_list_filters_by_survey_and_links_back(
    personas: dict[str, Persona], outsider: Persona, company: Company, other_company: Company
) -> None:
    first, second = active_survey(company, name="First"), active_survey(company, name="Second")
    ours = [
        campaign_create(company=company, survey=survey, audience={"all": True}, name=name)
        for survey, name in ((first, "Spring send"), (second, "Autumn send"))
    ]
    foreign = active_survey(other_company, name="Theirs")
    listing = reverse("surveys:campaigns", kwargs={"company_slug": company.slug})
    viewer = personas["viewer"].client
    page = viewer.get(listing, {"survey": first.public_id}).content.decode()
    assert ours[0].public_id in page
    assert ours[1].public_id not in page
    edit = reverse(
        "surveys:edit", kwargs={"company_slug": company.slug, "survey_id": first.public_id}
    )
    assert f'href="{edit}"' in page  # back to the survey
    everything = viewer.get(listing).content.decode()
    assert ours[0].public_id in everything
    assert ours[1].public_id in everything
    # Another company's survey id, or an unknown one, is not a filter: 404.
    assert viewer.get(listing, {"survey": foreign.public_id}).status_code == 404
    assert viewer.get(listing, {"survey": "nope"}).status_code == 404
    assert outsider.client.get(listing, {"survey": first.public_id}).status_code == 404
    detail = viewer.get(
        reverse(
            "surveys:campaign",
            kwargs={"company_slug": company.slug, "campaign_id": ours[0].public_id},
        )
    ).content.decode()
    assert f'href="{edit}"' in detail
    assert f"?survey={first.public_id}" in detail
