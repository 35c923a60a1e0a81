"""Erasure (art. 17) and export (art. 15/20) of one person, at the service level: every place
the product keeps their data, the dashboards' counts, the suppression kept as a hash, the
record, and the other company untouched."""

from __future__ import annotations

import pytest

from companies.models import Company
from dashboards.selectors import metrics_for
from dashboards.services import rollup_fold
from notifications.models import Channel, Suppression
from notifications.selectors import suppressed_addresses
from privacy.models import IdentifierKind, PersonalDataRequest, RequestKind, RequestVia
from privacy.selectors import person_export, person_identify
from privacy.services import Actor, person_erase, person_export_recorded
from privacy.tests.helpers import (
    COMMENT,
    CUSTOMER_REPLY,
    EMAIL,
    EXTERNAL_ID,
    NOTE,
    PHONE,
    leftovers,
    person_everywhere,
)
from responses.models import Response
from surveys.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _erase(company: Company, kind: str = IdentifierKind.EMAIL, value: str = EMAIL):
    person = person_identify(company=company, kind=kind, value=value)
    return person_erase(company=company, person=person, actor=Actor(via=RequestVia.WEB))


def test_the_world_holds_the_person_everywhere_before(company):
    """The check below would see each place: before erasure it finds the person in all."""
    person_everywhere(company)
    rollup_fold()
    places = {item.split(":")[0] for item in leftovers(company)}
    assert {
        "surveys.Contact",
        "surveys.Invitation",
        "surveys.ContactImport",
        "surveys.AutopilotMember",
        "responses.Response",
        "responses.Followup",
        "responses.FollowupEvent",
        "notifications.Delivery",
        "notifications.Suppression",
        "notifications.WebhookMessage",
        "notifications.OutboxMessage",
        "delighted_compat.DelightedResponse",
        "widget.WidgetView",
    } <= places
    assert any(item.startswith("file contact-imports/") for item in leftovers(company))
    assert any(item.startswith("file delighted_imports/") for item in leftovers(company))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IdentifierKind.EMAIL, " Ana.Person@Example.com "),
        (IdentifierKind.PHONE, PHONE),
        (IdentifierKind.EXTERNAL_ID, EXTERNAL_ID),
    ],
)
def test_erasure_leaves_nothing_that_names_the_person(company, kind, value):
    person_everywhere(company)
    _erase(company, kind, value)
    assert leftovers(company) == []


def test_erasure_keeps_the_dashboards_counts(company):
    world = person_everywhere(company)
    rollup_fold()
    before = metrics_for(company=company, survey=world.survey)
    assert before["response_count"] == 2
    _erase(company)
    after = metrics_for(company=company, survey=world.survey)
    assert after["response_count"] == before["response_count"]
    assert after["nps"] == before["nps"] == 0
    # The score is there, linked to nobody, with nothing they wrote.
    response = Response.objects.for_company(company).get(pk=world.response.pk)
    assert (response.score, response.contact_id, response.invitation_id) == (2, None, None)
    assert (response.comment, response.contact_properties) == ("", {})


def test_erasure_leaves_other_people_alone(company):
    world = person_everywhere(company)
    _erase(company)
    bob = Contact.objects.for_company(company).get(email="bob@example.com")
    other = Response.objects.for_company(company).get(pk=world.other_response.pk)
    assert (other.contact_id, other.comment) == (bob.pk, "Bob loves it")
    world.contact_import.refresh_from_db()
    with world.contact_import.file.open("rb") as f:
        assert b"bob@example.com,Bob,silver" in f.read()
    assert world.contact_import.samples == {"email": ["bob@example.com"]}


def test_erasure_leaves_the_other_company_alone(company, other_company):
    person_everywhere(company)
    theirs = person_everywhere(other_company)
    _erase(company)
    assert Contact.objects.for_company(other_company).filter(email=EMAIL).exists()
    assert Suppression.objects.for_company(other_company).filter(address=EMAIL).exists()
    kept = Response.objects.for_company(other_company).get(pk=theirs.response.pk)
    assert kept.comment == COMMENT


def test_the_address_stays_suppressed_only_as_a_hash(company):
    person_everywhere(company)
    _erase(company)
    stored = list(Suppression.objects.for_company(company).values_list("address", flat=True))
    assert len(stored) == 1
    assert stored[0].startswith("sha256:")
    assert EMAIL not in stored[0]
    # Sends check suppressions through this one selector: the address is still refused.
    assert suppressed_addresses(
        company=company, channel=Channel.EMAIL, addresses=["ANA.person@example.com"]
    ) == {"ANA.person@example.com"}
    assert not suppressed_addresses(
        company=company, channel=Channel.EMAIL, addresses=["someone@example.com"]
    )


def test_erasing_twice_keeps_one_hashed_suppression(company):
    person_everywhere(company)
    _erase(company)
    Suppression.objects.create(
        company=company, channel=Channel.EMAIL, address=EMAIL, reason="unsubscribed"
    )
    _erase(company)
    assert Suppression.objects.for_company(company).count() == 1
    assert leftovers(company) == []


def test_erasure_is_recorded_without_the_identifier(company, owner):
    person_everywhere(company)
    person = person_identify(company=company, kind=IdentifierKind.EMAIL, value=EMAIL)
    record = person_erase(
        company=company, person=person, actor=Actor(via=RequestVia.WEB, user=owner.user)
    )
    assert (record.kind, record.identifier_kind, record.via) == (
        RequestKind.ERASURE,
        IdentifierKind.EMAIL,
        RequestVia.WEB,
    )
    assert record.actor_user == owner.user
    assert record.counts["responses"] == 1
    assert record.counts["contacts"] == 1
    row = PersonalDataRequest.objects.for_company(company).filter(pk=record.pk).values().get()
    assert EMAIL not in repr(row)


def test_export_has_everything_we_hold(company):
    world = person_everywhere(company)
    person = person_identify(company=company, kind=IdentifierKind.EXTERNAL_ID, value=EXTERNAL_ID)
    data = person_export(company=company, person=person)
    assert [c["email"] for c in data["contacts"]] == [EMAIL]
    assert data["contacts"][0]["properties"] == {"plan": "gold-ana"}
    assert [r["comment"] for r in data["responses"]] == [COMMENT]
    thread = [e["body"] for e in data["responses"][0]["followups"][0]["thread"]]
    assert NOTE in thread
    assert CUSTOMER_REPLY in thread
    assert data["invitations"][0]["properties"]["order"] == "A-1"
    # The deliveries to them; not the team's alert emails about them.
    assert {d["to"] for d in data["deliveries"]} == {EMAIL, PHONE}
    assert [s["address"] for s in data["suppressions"]] == [EMAIL]
    assert data["recurring_surveys"][0]["properties"] == {"tier": "gold-ana"}
    assert data["widget_views"][0]["page_url"].endswith(EXTERNAL_ID)
    # Nobody else's answers.
    assert world.other_response.public_id not in repr(data)


def test_export_is_recorded_and_changes_nothing(company, api_owner):
    person_everywhere(company)
    person = person_identify(company=company, kind=IdentifierKind.PHONE, value=PHONE)
    person_export_recorded(
        company=company, person=person, actor=Actor(via=RequestVia.API, api_key=api_owner.api_key)
    )
    record = PersonalDataRequest.objects.for_company(company).get()
    assert (record.kind, record.identifier_kind, record.actor_api_key) == (
        RequestKind.EXPORT,
        IdentifierKind.PHONE,
        api_owner.api_key,
    )
    assert record.counts["responses"] == 1
    assert Contact.objects.for_company(company).filter(email=EMAIL).exists()


def test_invalid_identifiers_are_field_errors(company):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as bad_email:
        person_identify(company=company, kind=IdentifierKind.EMAIL, value="not-an-email")
    assert "email" in bad_email.value.message_dict
    with pytest.raises(ValidationError) as bad_phone:
        person_identify(company=company, kind=IdentifierKind.PHONE, value="12")
    assert "phone" in bad_phone.value.message_dict


def test_a_short_external_id_erases_only_the_webhook_messages_that_name_it(company):
    from notifications.webhooks_models import MessageKind, WebhookMessage

    Contact.objects.create(company=company, email="short@example.com", external_id="42")
    theirs = WebhookMessage.objects.create(
        company=company,
        kind=MessageKind.WEBHOOK,
        event_type="response.created",
        payload={"data": {"contact": {"external_id": "42"}}},
    )
    others = WebhookMessage.objects.create(
        company=company,
        kind=MessageKind.WEBHOOK,
        event_type="response.created",
        payload={"data": {"score": 42, "id": "r_x42y", "contact": {"external_id": "420"}}},
    )
    _erase(company, IdentifierKind.EXTERNAL_ID, "42")
    remaining = set(WebhookMessage.objects.for_company(company).values_list("pk", flat=True))
    assert remaining == {others.pk}
    assert theirs.pk not in remaining


def test_the_record_counts_the_rows_taken_out_of_files(company):
    person_everywhere(company)
    record = _erase(company)
    record.refresh_from_db()
    # The person's row of the upload, their row of its error report, and of the Delighted file.
    assert record.counts["stored_files"] == 3
