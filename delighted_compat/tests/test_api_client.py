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
from notifications.models import Channel, SuppressionReason
from notifications.services import suppression_add
from responses.models import Response
from surveys.models import Contact, Invitation, InvitationStatus

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
    assert not Response.objects.for_company(company).exists()  # their answers went with them

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
