"""Delighted's official Python client (4.2.0), unchanged but for ``api_base_url`` and the key,
against a live server: spec ``delighted-api.md`` §1.8, the acceptance test."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Delighted is being sunset", category=FutureWarning)
    import delighted  # type: ignore[import-untyped]
    from delighted.errors import (  # type: ignore[import-untyped]
        AuthenticationError,
        GeneralAPIError,
        ResourceValidationError,
        TooManyRequestsError,
    )

from companies.models import Company, Role
from companies.services import api_key_create, api_key_revoke
from delighted_compat.api.services import default_survey_ensure
from notifications.models import Channel, SuppressionReason
from notifications.services import suppression_add
from responses.models import Response
from surveys.models import AutopilotMember, AutopilotProgram, Contact, Invitation, InvitationStatus
from surveys.services.autopilot import autopilot_configure

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def base_url(live_server: Any) -> str:
    return live_server.url + "/v1/"


def client_for(base_url: str, company: Company, role: str = Role.ADMIN) -> delighted.Client:
    key = api_key_create(company=company, name="Delighted client", role=role).key
    return delighted.Client(api_key=key, api_base_url=base_url)


def test_acceptance(base_url: str, company: Company) -> None:
    c = client_for(base_url, company)
    p = delighted.Person.create(
        client=c, email="ana@example.com", name="Ana", properties={"Plan": "pro"}, delay=60
    )
    assert type(p) is delighted.Person
    assert isinstance(p.id, str)
    assert p.email == "ana@example.com"
    assert p.properties["Plan"] == "pro"
    assert isinstance(p.survey_scheduled_at, int)
    invitation = Invitation.objects.for_company(company).get()
    assert invitation.status == InvitationStatus.SCHEDULED
    assert int(invitation.scheduled_for.timestamp()) == p.survey_scheduled_at

    again = delighted.Person.create(client=c, email="ana@example.com", name="Ana B", send=False)
    assert again.id == p.id
    assert again.name == "Ana B"
    assert again.next_survey_scheduled_at == p.survey_scheduled_at
    for e in ("b@example.com", "c@example.com"):
        delighted.Person.create(client=c, email=e, send=False)
    seen = [x.email for x in delighted.Person.list(client=c, per_page=2).auto_paging_iter()]
    assert seen == ["ana@example.com", "b@example.com", "c@example.com"]  # 2 pages via Link
    one = delighted.Person.list(client=c, email="b@example.com").auto_paging_iter()
    assert [x.email for x in one] == ["b@example.com"]

    r = delighted.SurveyResponse.create(
        client=c, person=p.id, score=9, comment="Рахмет!", person_properties={"Segment": "SMB"}
    )
    assert type(r) is delighted.SurveyResponse
    assert r.person == p.id
    assert r.score == 9
    assert r.comment == "Рахмет!"
    assert r.person_properties == {"Segment": "SMB"}
    got = delighted.SurveyResponse.retrieve(r.id, client=c, expand=["person"])
    assert type(got.person) is delighted.Person
    assert got.person.id == p.id
    got.score = 3
    saved = got.save(client=c)  # PUT of the whole object, person expanded
    assert saved.score == 3
    assert saved.id == r.id
    lst = delighted.SurveyResponse.all(
        client=c, order="desc", per_page=100, page=1, expand=["person"]
    )
    assert [x.id for x in lst] == [r.id]
    assert type(lst[0].person) is delighted.Person
    assert delighted.SurveyResponse.all(client=c, page=2) == []

    m = delighted.Metrics.retrieve(client=c)
    assert m.response_count == 1
    assert m.detractor_count == 1
    assert m.nps == -100
    assert m.detractor_percent == 100
    assert m.promoter_percent == 0

    assert delighted.Unsubscribe.create(client=c, person_email="b@example.com") == {"ok": True}
    assert [u.email for u in delighted.Unsubscribe.all(client=c)] == ["b@example.com"]
    suppression_add(
        company=company,
        channel=Channel.EMAIL,
        address="c@example.com",
        reason=SuppressionReason.BOUNCED,
    )
    bounces = delighted.Bounce.all(client=c)
    assert [(b.email, b.person_id) for b in bounces] == [
        ("c@example.com", Contact.objects.for_company(company).get(email="c@example.com").public_id)
    ]

    assert delighted.SurveyRequest.delete_pending(client=c, person_email="ana@example.com") == {
        "ok": True
    }
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.CANCELLED

    assert delighted.Person.delete(client=c, email="c@example.com") == {"ok": True}
    assert not Contact.objects.for_company(company).filter(email="c@example.com").exists()
    assert delighted.Person.delete(client=c, id=p.id) == {"ok": True}
    # Their answer is erased: its score stays counted, linked to nobody, without its comment
    # (privacy.services; README "Personal data").
    assert list(Response.objects.for_company(company).values_list("contact", "comment")) == [
        (None, "")
    ]
    assert delighted.Metrics.retrieve(client=c).response_count == 1

    with pytest.raises(ResourceValidationError) as invalid:
        delighted.SurveyResponse.create(client=c, person=again.id, score=11)
    assert invalid.value.response.status_code == 422
    assert '"errors"' in invalid.value.response.body
    with pytest.raises(AuthenticationError):
        delighted.Metrics.retrieve(client=delighted.Client(api_key="wrong", api_base_url=base_url))
    with pytest.raises(GeneralAPIError) as missing:
        delighted.SurveyResponse.retrieve("does-not-exist", client=c)
    assert missing.value.response.status_code == 404


def test_rate_limit_gives_an_integer_retry_after(
    base_url: str, company: Company, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "2/min"},
    }
    c = client_for(base_url, company)
    delighted.Metrics.retrieve(client=c)
    delighted.Metrics.retrieve(client=c)
    with pytest.raises(TooManyRequestsError) as limited:
        delighted.Metrics.retrieve(client=c)
    assert isinstance(limited.value.retry_after, int)
    assert limited.value.retry_after >= 1


def test_another_companys_key_sees_nothing_of_ours(
    base_url: str, company: Company, other_company: Company
) -> None:
    ours = client_for(base_url, company)
    p = delighted.Person.create(client=ours, email="ana@example.com", send=False)
    r = delighted.SurveyResponse.create(client=ours, person=p.id, score=10)
    delighted.Unsubscribe.create(client=ours, person_email="ana@example.com")

    theirs = client_for(base_url, other_company)
    assert list(delighted.Person.list(client=theirs).auto_paging_iter()) == []
    assert delighted.SurveyResponse.all(client=theirs) == []
    assert delighted.Unsubscribe.all(client=theirs) == []
    assert delighted.Metrics.retrieve(client=theirs).response_count == 0
    for call in (
        lambda: delighted.SurveyResponse.retrieve(r.id, client=theirs),
        lambda: delighted.Person.delete(client=theirs, id=p.id),
        lambda: delighted.Person.delete(client=theirs, email="ana@example.com"),
    ):
        with pytest.raises(GeneralAPIError) as refused:
            call()
        assert refused.value.response.status_code == 404
    with pytest.raises(ResourceValidationError):
        delighted.SurveyResponse.create(client=theirs, person=p.id, score=1)
    assert delighted.SurveyResponse.retrieve(r.id, client=ours).score == 10


def test_revoked_and_read_only_keys(base_url: str, company: Company) -> None:
    issued = api_key_create(company=company, name="old")
    api_key_revoke(company=company, api_key=issued.api_key)
    revoked = delighted.Client(api_key=issued.key, api_base_url=base_url)
    for call in (
        lambda: delighted.Person.create(client=revoked, email="x@example.com"),
        lambda: delighted.Person.delete(client=revoked, email="x@example.com"),
        lambda: delighted.SurveyResponse.all(client=revoked),
    ):
        with pytest.raises(AuthenticationError):
            call()
    reader = client_for(base_url, company, role=Role.VIEWER)
    assert delighted.Metrics.retrieve(client=reader).response_count == 0
    with pytest.raises(GeneralAPIError) as refused:
        delighted.Person.create(client=reader, email="x@example.com")
    assert refused.value.response.status_code == 403
    assert not Contact.objects.for_company(company).exists()


def _autopilot_on(company: Company, channel: str, cadence_days: int = 90) -> AutopilotProgram:
    """The company's recurring programme on ``channel`` for the API's default survey."""
    return autopilot_configure(
        company=company,
        survey=default_survey_ensure(company=company),
        channel=channel,
        active=True,
        cadence_days=cadence_days,
        first_delay_days=7,
    )


def _members(company: Company, channel: str) -> dict[str, dict[str, Any]]:
    """Address → properties of the company's members on ``channel``."""
    field = "contact__email" if channel == "email" else "contact__phone"
    return dict(
        AutopilotMember.objects.for_company(company)
        .filter(program__channel=channel)
        .values_list(field, "properties")
    )


def test_autopilot(base_url: str, company: Company) -> None:
    c = client_for(base_url, company)
    by_email = delighted.AutopilotMembership.forEmail()
    by_sms = delighted.AutopilotMembership.forSms()

    # Nothing set up: the configuration is off, adding is a 422 that creates nobody.
    off = delighted.AutopilotConfiguration.retrieve("email", client=c)
    assert type(off) is delighted.AutopilotConfiguration
    assert off == {
        "platform_id": "email",
        "active": False,
        "frequency": None,
        "created_at": None,
        "updated_at": None,
    }
    with pytest.raises(ResourceValidationError) as not_set_up:
        by_email.create(client=c, person_email="ana@example.com")
    assert not_set_up.value.response.status_code == 422
    assert '"errors"' in not_set_up.value.response.body
    assert not Contact.objects.for_company(company).exists()
    assert list(by_email.list(client=c).auto_paging_iter()) == []
    with pytest.raises(GeneralAPIError) as unknown_platform:
        delighted.AutopilotConfiguration.retrieve("whatsapp", client=c)
    assert unknown_platform.value.response.status_code == 404

    program = _autopilot_on(company, "email", cadence_days=90)
    on = delighted.AutopilotConfiguration.retrieve("email", client=c)
    assert on.platform_id == "email"
    assert on.active is True
    assert on.frequency == 90 * 86400
    assert on.created_at == int(program.created_at.timestamp())
    assert isinstance(on.updated_at, int)
    assert delighted.AutopilotConfiguration.retrieve("sms", client=c).active is False

    # Add: a new person is created, with the membership's properties (not the person's).
    added = by_email.create(
        client=c,
        person_email="Ana@Example.com",
        person_name="Ana",
        properties={"Plan": "pro", "State": "CA"},
    )
    assert type(added) is delighted.AutopilotMembershipForEmail
    ana = Contact.objects.for_company(company).get(email="ana@example.com")
    assert added.person == {
        "id": ana.public_id,
        "name": "Ana",
        "email": "ana@example.com",
        "created_at": int(ana.created_at.timestamp()),
        "phone_number": None,
    }
    assert added.properties == {"Plan": "pro", "State": "CA"}
    assert ana.properties == {}
    for n in range(4):
        by_email.create(client=c, person_email=f"p{n}@example.com")
    by_email.create(client=c, person_id=ana.public_id, properties={"Plan": "team"})  # replace
    assert _members(company, "email")["ana@example.com"] == {"Plan": "team"}

    # List: every member once, in the order they joined, over three pages of two.
    pages = by_email.list(client=c, per_page=2).auto_paging_iter()
    seen = list(pages)
    assert [m.person["email"] for m in seen] == [
        "ana@example.com",
        "p0@example.com",
        "p1@example.com",
        "p2@example.com",
        "p3@example.com",
    ]
    first = seen[0]
    member = AutopilotMember.objects.for_company(company).get(contact=ana)
    assert member.next_ask_at is not None
    assert first.next_survey_request["survey_scheduled_at"] == int(member.next_ask_at.timestamp())
    assert first.next_survey_request["properties"] == {"Plan": "team"}
    assert first.person["last_sent_at"] is None
    assert isinstance(first.created_at, int)
    only = by_email.list(client=c, person_email="ana@example.com").auto_paging_iter()
    assert [m.person["id"] for m in only] == [ana.public_id]
    assert list(by_email.list(client=c, person_id="nobody").auto_paging_iter()) == []

    # Remove: by email (a JSON body, as the Python client sends it); the person stays.
    removed = by_email.delete(client=c, person_email="p0@example.com")
    assert removed["person"]["email"] == "p0@example.com"
    assert "p0@example.com" not in _members(company, "email")
    assert Contact.objects.for_company(company).filter(email="p0@example.com").exists()
    for call in (
        lambda: by_email.delete(client=c, person_email="p0@example.com"),  # no longer in
        lambda: by_email.delete(client=c, person_email="nobody@example.com"),
    ):
        with pytest.raises(GeneralAPIError) as missing:
            call()
        assert missing.value.response.status_code == 404
    for params in ({}, {"person_email": "p1@example.com", "person_id": ana.public_id}):
        with pytest.raises(ResourceValidationError):
            by_email.delete(client=c, **params)
    assert "p1@example.com" in _members(company, "email")
    with pytest.raises(ResourceValidationError):  # no identifier
        by_email.create(client=c, properties={"Plan": "x"})

    # SMS: not set up yet (422), then by phone number.
    with pytest.raises(ResourceValidationError):
        by_sms.create(client=c, person_phone_number="+77011234567")
    _autopilot_on(company, "sms", cadence_days=30)
    assert delighted.AutopilotConfiguration.retrieve("sms", client=c).frequency == 30 * 86400
    sms = by_sms.create(client=c, person_phone_number="+77011234567", properties={"a": "b"})
    assert sms.person["phone_number"] == "+77011234567"
    listed = list(by_sms.list(client=c, person_phone_number="+77011234567").auto_paging_iter())
    assert [m.person["phone_number"] for m in listed] == ["+77011234567"]
    with pytest.raises(ResourceValidationError):  # ana has no phone number
        by_sms.create(client=c, person_id=ana.public_id)
    assert by_sms.delete(client=c, person_phone_number="+77011234567")["person"]["id"]
    assert _members(company, "sms") == {}

    # The base class has no platform: the client itself refuses (and prints why).
    with pytest.raises(AttributeError):
        delighted.AutopilotMembership.delete(client=c, person_email="ana@example.com")


def test_autopilot_keys_and_tenancy(
    base_url: str, company: Company, other_company: Company
) -> None:
    _autopilot_on(company, "email")
    ours = client_for(base_url, company)
    by_email = delighted.AutopilotMembership.forEmail()
    by_email.create(client=ours, person_email="ana@example.com", properties={"Plan": "pro"})

    wrong = delighted.Client(api_key="wrong", api_base_url=base_url)
    for call in (
        lambda: delighted.AutopilotConfiguration.retrieve("email", client=wrong),
        lambda: list(by_email.list(client=wrong).auto_paging_iter()),
        lambda: by_email.create(client=wrong, person_email="x@example.com"),
        lambda: by_email.delete(client=wrong, person_email="ana@example.com"),
    ):
        with pytest.raises(AuthenticationError):
            call()

    reader = client_for(base_url, company, role=Role.VIEWER)
    assert delighted.AutopilotConfiguration.retrieve("email", client=reader).active is True
    assert [m.person["email"] for m in by_email.list(client=reader).auto_paging_iter()] == [
        "ana@example.com"
    ]
    for call in (
        lambda: by_email.create(client=reader, person_email="x@example.com"),
        lambda: by_email.delete(client=reader, person_email="ana@example.com"),
    ):
        with pytest.raises(GeneralAPIError) as refused:
            call()
        assert refused.value.response.status_code == 403

    # Another company's key: nothing of ours, before and after it sets up its own.
    theirs = client_for(base_url, other_company)
    assert delighted.AutopilotConfiguration.retrieve("email", client=theirs).active is False
    assert list(by_email.list(client=theirs).auto_paging_iter()) == []
    with pytest.raises(ResourceValidationError):
        by_email.create(client=theirs, person_email="ana@example.com")
    _autopilot_on(other_company, "email")
    assert list(by_email.list(client=theirs).auto_paging_iter()) == []
    ana = Contact.objects.for_company(company).get(email="ana@example.com")
    for params in ({"person_email": "ana@example.com"}, {"person_id": ana.public_id}):
        with pytest.raises(GeneralAPIError) as refused:
            by_email.delete(client=theirs, **params)
        assert refused.value.response.status_code == 404
    with pytest.raises(ResourceValidationError):  # our person's id is unknown to them
        by_email.create(client=theirs, person_id=ana.public_id)
    by_email.create(client=theirs, person_email="ana@example.com", properties={"Plan": "x"})
    assert _members(company, "email") == {"ana@example.com": {"Plan": "pro"}}
    assert _members(other_company, "email") == {"ana@example.com": {"Plan": "x"}}
    assert [m.person["id"] for m in by_email.list(client=ours).auto_paging_iter()] == [
        ana.public_id
    ]


def test_person_delete_is_the_full_erasure(
    base_url: str, company: Company, settings, tmp_path
) -> None:
    """``DELETE /v1/people/…`` through the official client erases like the web app and
    /api/v1/ do: nothing naming the person is left (responses' comments and properties,
    follow-up threads, the ledger, webhook logs, import files), the NPS is unchanged, the
    address stays suppressed as a hash (Delighted's own delete forgot the unsubscribe, and
    the person could be surveyed again), and the erasure is recorded against the key."""
    from dashboards.selectors import metrics_for
    from dashboards.services import rollup_fold
    from notifications.selectors import suppressed_addresses
    from privacy.models import PersonalDataRequest, RequestKind, RequestVia
    from privacy.tests.helpers import EMAIL, leftovers, person_everywhere

    settings.MEDIA_ROOT = str(tmp_path)
    world = person_everywhere(company)
    rollup_fold()
    before = metrics_for(company=company, survey=world.survey)
    c = client_for(base_url, company)
    assert delighted.Person.delete(client=c, email=EMAIL) == {"ok": True}
    assert leftovers(company) == []
    after = metrics_for(company=company, survey=world.survey)
    assert (after["nps"], after["response_count"]) == (before["nps"], before["response_count"])
    assert suppressed_addresses(company=company, channel=Channel.EMAIL, addresses=[EMAIL])
    record = PersonalDataRequest.objects.for_company(company).get()
    assert (record.kind, record.via, record.identifier_kind) == (
        RequestKind.ERASURE,
        RequestVia.DELIGHTED_API,
        "person_id",
    )
    assert record.actor_api_key is not None
    assert record.actor_api_key.name == "Delighted client"
