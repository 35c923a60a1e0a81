"""The default wording: every kind, every language, every key; and how a survey falls back."""

from __future__ import annotations

import pytest

from surveys.defaults import DEFAULT_TEXTS, EDITABLE_TEXT_KEYS, KINDS, LANGUAGES, TEXT_KEYS
from surveys.selectors import survey_extra_questions, survey_text
from surveys.services.surveys import survey_create

pytestmark = pytest.mark.django_db

CYRILLIC = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")
KAZAKH_ONLY = set("әғқңөұүһі")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_has_wording(kind, language):
    texts = DEFAULT_TEXTS[kind][language]
    assert set(texts) == TEXT_KEYS
    assert set(EDITABLE_TEXT_KEYS) <= TEXT_KEYS
    for key, text in texts.items():
        assert text.strip(), (kind, language, key)
        assert text == text.strip()
    assert "{company}" in texts["question"]
    # The follow-ups differ per category, not one text for all.
    assert len({texts["why_promoter"], texts["why_passive"], texts["why_detractor"]}) == 3


def test_languages_are_really_those_languages():
    for kind in KINDS:
        assert not CYRILLIC & set(DEFAULT_TEXTS[kind]["en"]["question"].lower())
        ru = DEFAULT_TEXTS[kind]["ru"]["question"].lower()
        kk = DEFAULT_TEXTS[kind]["kk"]["question"].lower()
        assert CYRILLIC & set(ru)
        assert not KAZAKH_ONLY & set(ru)
        assert KAZAKH_ONLY & set(kk), "Kazakh uses its own letters"


def test_the_documented_questions():
    assert DEFAULT_TEXTS["nps"]["en"]["question"] == (
        "How likely are you to recommend {company} to a friend or colleague?"
    )
    assert DEFAULT_TEXTS["enps"]["en"]["question"] == (
        "How likely are you to recommend {company} as a place to work?"
    )
    assert DEFAULT_TEXTS["nps"]["ru"]["question"] == (
        "Насколько вероятно, что вы порекомендуете {company} другу или коллеге?"
    )
    assert DEFAULT_TEXTS["nps"]["kk"]["question"] == (
        "{company} компаниясын досыңызға немесе әріптесіңізге ұсыну ықтималдығыңыз қандай?"
    )


def test_survey_text_uses_defaults_and_fills_in_the_company(company):
    survey = survey_create(company=company, name="Customers")
    text = survey_text(survey=survey, company=company, language="ru", key="question")
    assert text == "Насколько вероятно, что вы порекомендуете Acme Coffee другу или коллеге?"
    enps = survey_create(company=company, name="Team", kind="enps")
    text = survey_text(survey=enps, company=company, language="en", key="question")
    assert text == "How likely are you to recommend Acme Coffee as a place to work?"


def test_custom_wording_wins_per_language_and_blank_falls_back(company):
    survey = survey_create(
        company=company,
        name="Customers",
        texts={"en": {"question": "Would you send {company} to a friend?", "thanks": "  "}},
    )
    assert survey.texts == {"en": {"question": "Would you send {company} to a friend?"}}
    assert (
        survey_text(survey=survey, company=company, language="en", key="question")
        == "Would you send Acme Coffee to a friend?"
    )
    # Blank → default in the same language.
    assert survey_text(survey=survey, company=company, language="en", key="thanks").startswith(
        "Thank you for your feedback"
    )
    # Kazakh has no custom text: the Kazakh default, not the English custom one.
    assert survey_text(survey=survey, company=company, language="kk", key="question") == (
        "Acme Coffee компаниясын досыңызға немесе әріптесіңізге ұсыну ықтималдығыңыз қандай?"
    )


def test_unknown_language_falls_back_to_the_survey_default(company):
    survey = survey_create(company=company, name="Customers", default_language="kk")
    for language in ("de", "", "xx-YY"):
        text = survey_text(survey=survey, company=company, language=language, key="submit")
        assert text == "Жіберу"


def test_extra_questions_in_a_language_fall_back_to_the_default_language(company):
    survey = survey_create(
        company=company,
        name="Customers",
        extra_questions=[
            {
                "kind": "choice",
                "text": {"en": "How did you hear of us?", "ru": "Как вы о нас узнали?"},
                "choices": [{"en": "Friend", "ru": "Друг"}, {"en": "Ads"}],
            }
        ],
    )
    [question] = survey_extra_questions(survey=survey, language="ru")
    assert question["text"] == "Как вы о нас узнали?"
    assert question["choices"] == ["Друг", "Ads"]
    [question] = survey_extra_questions(survey=survey, language="kk")
    assert question["text"] == "How did you hear of us?"
