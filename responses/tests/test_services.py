"""response_record: one response per invitation, updates, snapshots, validation, races."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections

from responses.models import Response
from responses.selectors import invitation_for_token
from responses.services import link_signature, link_signature_valid, response_record
from responses.signals import response_saved
from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.models import Invitation

pytestmark = pytest.mark.django_db


def _count(company) -> int:
    return Response.objects.for_company(company).count()


def test_first_answer_creates_with_snapshots_and_marks_answered(invitation_token, contact):
    invitation, _token = invitation_token
    response = response_record(
        invitation=invitation,
        survey=invitation.survey,
        score=9,
        comment="  Great coffee  ",
        channel="email",
        language="en",
    )
    assert (response.score, response.category, response.comment) == (9, "promoter", "Great coffee")
    assert response.contact == contact
    assert response.contact_properties == {"plan": "gold"}
    assert response.invitation_properties == {"order": "A-17"}
    invitation.refresh_from_db()
    assert invitation.answered_at is not None


def test_answering_again_updates_the_one_row(invitation_token, contact):
    invitation, _token = invitation_token
    first = response_record(
        invitation=invitation,
        survey=invitation.survey,
        score=3,
        comment="slow",
        channel="email",
        language="en",
    )
    contact.properties = {"plan": "silver"}
    contact.save()
    invitation.contact.refresh_from_db()
    again = response_record(
        invitation=invitation, survey=invitation.survey, score=8, channel="email", language="ru"
    )
    assert again.pk == first.pk
    assert _count(invitation.company) == 1
    again.refresh_from_db()
    assert (again.score, again.category, again.language) == (8, "passive", "ru")
    assert again.comment == "slow", "comment=None keeps the earlier comment"
    assert again.contact_properties == {"plan": "gold"}, "snapshot taken at the first answer"
    assert again.updated_at > again.created_at
    cleared = response_record(
        invitation=invitation,
        survey=invitation.survey,
        score=8,
        comment="",
        channel="email",
        language="ru",
    )
    assert cleared.comment == ""


def test_signal_after_commit_with_created_and_previous_score(
    invitation_token, django_capture_on_commit_callbacks
):
    invitation, _token = invitation_token
    seen: list[dict] = []

    def receiver(**kwargs):
        seen.append(kwargs)

    response_saved.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = response_record(
                invitation=invitation,
                survey=invitation.survey,
                score=2,
                channel="email",
                language="en",
            )
        assert seen == [], "sent only after commit"
        for callback in callbacks:
            callback()
        with django_capture_on_commit_callbacks(execute=True):
            response_record(
                invitation=invitation,
                survey=invitation.survey,
                score=10,
                channel="email",
                language="en",
            )
    finally:
        response_saved.disconnect(receiver)
    assert [(s["response_id"], s["created"], s["previous_score"]) for s in seen] == [
        (response.pk, True, None),
        (response.pk, False, 2),
    ]
    assert seen[0]["company_id"] == invitation.company_id


@pytest.mark.parametrize("score", [-1, 11, True, "7", 7.5, None])
def test_score_must_be_an_int_from_0_to_10(invitation_token, score):
    invitation, _token = invitation_token
    with pytest.raises(ValidationError) as exc:
        response_record(
            invitation=invitation,
            survey=invitation.survey,
            score=score,
            channel="email",
            language="en",
        )
    assert "score" in exc.value.message_dict
    assert _count(invitation.company) == 0


def test_comment_longer_than_5000_is_refused(invitation_token):
    invitation, _token = invitation_token
    with pytest.raises(ValidationError) as exc:
        response_record(
            invitation=invitation,
            survey=invitation.survey,
            score=5,
            comment="x" * 5001,
            channel="email",
            language="en",
        )
    assert "comment" in exc.value.message_dict
    assert _count(invitation.company) == 0


def test_extra_answers_validated_against_the_survey(invitation_token):
    invitation, _token = invitation_token
    response = response_record(
        invitation=invitation,
        survey=invitation.survey,
        score=9,
        extra_answers={"visit": "1", "dish": " Latte "},
        channel="email",
        language="en",
    )
    assert response.extra_answers == {"visit": 1, "dish": "Latte"}
    for bad in ({"visit": "5"}, {"nope": "x"}, {"dish": "y" * 1001}):
        with pytest.raises(ValidationError) as exc:
            response_record(
                invitation=invitation,
                survey=invitation.survey,
                score=9,
                extra_answers=bad,
                channel="email",
                language="en",
            )
        assert "extra_answers" in exc.value.message_dict
    # A blank answer clears an earlier one; unspecified ones stay.
    response = response_record(
        invitation=invitation,
        survey=invitation.survey,
        score=9,
        extra_answers={"dish": ""},
        channel="email",
        language="en",
    )
    assert response.extra_answers == {"visit": 1}


def test_anonymous_survey_stores_no_contact(company):
    survey = make_survey(company, anonymous=True, kind="enps")
    invitation, _token = make_invitation(survey, make_contact(company, "emp@acme.test"))
    response = response_record(
        invitation=invitation, survey=survey, score=6, channel="email", language="en"
    )
    assert response.contact is None


def test_invitation_for_token(invitation_token, other_company):
    invitation, token = invitation_token
    found = invitation_for_token(token=token)
    assert found == invitation
    assert found.company == invitation.company
    assert invitation_for_token(token=token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert invitation_for_token(token="short") is None
    assert invitation_for_token(token="!" * 43) is None


def _field_values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_invitation_for_token_loads_what_the_orm_would_in_one_query(
    invitation_token, django_assert_num_queries
):
    invitation, token = invitation_token
    survey = invitation.survey
    survey.texts = {"en": {"question": "Would you recommend Acme?"}}
    survey.save()
    expected = (
        Invitation.objects.for_company(invitation.company)
        .select_related("survey", "contact", "company")
        .get(pk=invitation.pk)
    )
    invitation_for_token(token=token)  # the connection's first prepares the statement
    with django_assert_num_queries(1):
        found = invitation_for_token(token=token)
        assert found is not None
        loaded = (found, found.survey, found.contact, found.company, found.survey.company)
    wanted = (expected, expected.survey, expected.contact, expected.company, expected.company)
    for got, want in zip(loaded, wanted, strict=True):
        assert not got._state.adding
        got_values, want_values = _field_values(got), _field_values(want)
        assert got_values == want_values
        # Converted as the ORM converts (JSON parsed, not text; aware datetimes).
        assert {k: type(v) for k, v in got_values.items()} == {
            k: type(v) for k, v in want_values.items()
        }
    assert found.survey.texts["en"]["question"] == "Would you recommend Acme?"
    assert found.survey.company is found.company


def test_link_signature_is_per_company(company, other_company):
    sig = link_signature(company=company, email="Ann@Customer.test ")
    assert link_signature_valid(company=company, email="ann@customer.test", signature=sig)
    assert not link_signature_valid(company=other_company, email="ann@customer.test", signature=sig)
    assert not link_signature_valid(company=company, email="bob@customer.test", signature=sig)


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_leave_one_row(company):
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def submit(score: int) -> None:
        try:
            barrier.wait()
            response_record(
                invitation=invitation, survey=survey, score=score, channel="email", language="en"
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=submit, args=(s,)) for s in (1, 5, 9, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = list(Response.objects.for_company(company).filter(invitation=invitation))
    assert len(rows) == 1
    assert rows[0].score in {1, 5, 9, 10}


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_link_submits_from_one_browser_leave_one_row(company):
    survey = make_survey(company)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def submit(score: int) -> None:
        try:
            barrier.wait()
            response_record(
                invitation=None,
                survey=survey,
                score=score,
                channel="link",
                language="en",
                browser_key="b" * 64,
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=submit, args=(s,)) for s in (0, 7, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Response.objects.for_company(company).filter(survey=survey).count() == 1


def test_a_first_answer_that_was_not_the_first_updates_the_earlier_one(company):
    # The widget says "first answer" for a showing not yet answered: the insert goes first,
    # and an earlier answer of the same browser after all is updated, not duplicated.
    survey = make_survey(company)
    common: dict[str, Any] = {
        "invitation": None,
        "survey": survey,
        "channel": "widget",
        "language": "en",
    }
    first = response_record(score=3, browser_key="w" * 64, first_answer=True, **common)
    again = response_record(
        score=4, comment="Slow", browser_key="w" * 64, first_answer=True, **common
    )
    assert again.pk == first.pk
    again.refresh_from_db()
    assert (again.score, again.comment) == (4, "Slow")
    assert _count(company) == 1
