"""Survey writes: validation (nothing saved on error), eNPS anonymity, status and sendability."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from surveys.models import Survey, SurveyStatus
from surveys.services.surveys import (
    SurveyNotSendable,
    survey_create,
    survey_ensure_sendable,
    survey_set_status,
    survey_update,
)

pytestmark = pytest.mark.django_db


def _choice(text="Pick one", choices=("A", "B")):
    return {"kind": "choice", "text": {"en": text}, "choices": [{"en": c} for c in choices]}


def test_create_gives_a_draft_with_the_model_defaults(company, owner):
    survey = survey_create(company=company, name="  Customers  ", created_by=owner.user)
    survey.refresh_from_db()
    assert survey.name == "Customers"
    assert survey.status == SurveyStatus.DRAFT
    assert survey.kind == "nps"
    assert survey.anonymous is False
    assert (survey.throttle_days, survey.sample_percent, survey.reminder_after_days) == (
        90,
        100,
        None,
    )
    assert survey.created_by == owner.user


def test_enps_is_always_anonymous(company):
    survey = survey_create(company=company, name="Team", kind="enps")
    assert survey.anonymous is True
    survey = survey_create(company=company, name="Customers")
    survey_update(company=company, survey=survey, kind="enps")
    survey.refresh_from_db()
    assert survey.anonymous is True
    survey_update(company=company, survey=survey, kind="nps")
    survey.refresh_from_db()
    assert survey.anonymous is False


def test_kind_cannot_change_once_the_survey_left_draft(company):
    survey = survey_create(company=company, name="Team", kind="enps")
    survey_set_status(company=company, survey=survey, status=SurveyStatus.ACTIVE)
    with pytest.raises(ValidationError) as info:
        survey_update(company=company, survey=survey, kind="nps")
    assert "kind" in info.value.message_dict
    survey.refresh_from_db()
    assert (survey.kind, survey.anonymous) == ("enps", True)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "   "}, "name"),
        ({"texts": {"de": {"question": "Wie?"}}}, "texts"),
        ({"texts": {"en": {"subtitle": "x"}}}, "texts"),
        ({"texts": {"en": {"question": "x" * 301}}}, "texts"),
        ({"texts": ["not", "a", "dict"]}, "texts"),
        ({"extra_questions": [_choice()] * 6}, "extra_questions"),
        ({"extra_questions": [{"kind": "rating", "text": {"en": "x"}}]}, "extra_questions"),
        ({"extra_questions": [_choice(choices=("only one",))]}, "extra_questions"),
        ({"extra_questions": [_choice(choices=[str(i) for i in range(11)])]}, "extra_questions"),
        (
            {"extra_questions": [{"kind": "text", "text": {"ru": "Только по-русски"}}]},
            "extra_questions",
        ),
        (
            {"extra_questions": [{"kind": "text", "text": {"en": "x"}, "choices": [{"en": "a"}]}]},
            "extra_questions",
        ),
        ({"accent_color": "red"}, "accent_color"),
        ({"accent_color": "#12345g"}, "accent_color"),
        ({"logo_url": "http://acme.test/logo.png"}, "logo_url"),
        ({"logo_url": "javascript:alert(1)"}, "logo_url"),
        ({"throttle_days": 4000}, "throttle_days"),
        ({"sample_percent": 0}, "sample_percent"),
        ({"sample_percent": 101}, "sample_percent"),
        ({"reminder_after_days": 0}, "reminder_after_days"),
        ({"reminder_after_days": 61}, "reminder_after_days"),
        ({"link_valid_days": 0}, "link_valid_days"),
        ({"default_language": "de"}, "default_language"),
        ({"kind": "csat"}, "kind"),
    ],
)
def test_invalid_input_is_refused_with_a_field_error_and_nothing_saved(company, fields, field):
    with pytest.raises(ValidationError) as info:
        survey_create(company=company, **{"name": "Customers", **fields})
    assert field in info.value.message_dict, info.value.message_dict
    assert not Survey.objects.for_company(company).exists()

    survey = survey_create(company=company, name="Kept")
    before = Survey.objects.for_company(company).values().get(pk=survey.pk)
    with pytest.raises(ValidationError) as info:
        survey_update(company=company, survey=survey, **fields)
    assert field in info.value.message_dict
    assert Survey.objects.for_company(company).values().get(pk=survey.pk) == before
    assert survey.name == "Kept"  # the in-memory object is untouched too


def test_extra_question_messages_say_which_question(company):
    with pytest.raises(ValidationError) as info:
        survey_create(
            company=company,
            name="x",
            extra_questions=[_choice(), _choice(choices=("one",))],
        )
    [message] = info.value.message_dict["extra_questions"]
    assert message.startswith("Question 2")


def test_valid_extra_questions_are_normalised_and_keep_their_ids(company):
    survey = survey_create(
        company=company,
        name="x",
        extra_questions=[
            {"kind": "text", "text": " Anything else? "},
            {"id": "plan", **_choice("Your plan?", ("Free", "Pro"))},
        ],
    )
    first, second = survey.extra_questions
    assert first["text"] == {"en": "Anything else?"}
    assert first["id"]
    assert second == {
        "id": "plan",
        "kind": "choice",
        "text": {"en": "Your plan?"},
        "choices": [{"en": "Free"}, {"en": "Pro"}],
    }
    survey_update(company=company, survey=survey, extra_questions=survey.extra_questions)
    survey.refresh_from_db()
    assert [q["id"] for q in survey.extra_questions] == [first["id"], "plan"]


def test_accent_colour_is_normalised(company):
    survey = survey_create(company=company, name="x", accent_color="#AABBCC")
    assert survey.accent_color == "#aabbcc"


def test_changing_the_default_language_needs_the_extra_questions_in_it(company):
    survey = survey_create(
        company=company, name="x", extra_questions=[{"kind": "text", "text": {"en": "Why?"}}]
    )
    with pytest.raises(ValidationError) as info:
        survey_update(company=company, survey=survey, default_language="ru")
    assert "extra_questions" in info.value.message_dict
    survey.refresh_from_db()
    assert survey.default_language == "en"


def test_status_transitions(company):
    survey = survey_create(company=company, name="x")
    with pytest.raises(ValidationError):
        survey_set_status(company=company, survey=survey, status=SurveyStatus.PAUSED)
    for status in ("active", "paused", "active", "archived", "paused"):
        survey_set_status(company=company, survey=survey, status=status)
        survey.refresh_from_db()
        assert survey.status == status
    with pytest.raises(ValidationError):
        survey_set_status(company=company, survey=survey, status=SurveyStatus.DRAFT)
    with pytest.raises(ValidationError):
        survey_set_status(company=company, survey=survey, status="deleted")


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (SurveyStatus.DRAFT, "is a draft: activate it"),
        (SurveyStatus.PAUSED, "is paused: resume it"),
        (SurveyStatus.ARCHIVED, "is archived"),
    ],
)
def test_only_an_active_survey_is_sendable(company, status, words):
    survey = survey_create(company=company, name="Spring check-in")
    survey.status = status
    with pytest.raises(SurveyNotSendable) as info:
        survey_ensure_sendable(survey=survey)
    assert str(info.value) == info.value.messages[0]
    assert "Spring check-in" in str(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, ValidationError)  # forms and the API show it as is
    survey.status = SurveyStatus.ACTIVE
    survey_ensure_sendable(survey=survey)  # no exception
