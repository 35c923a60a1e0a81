"""The invitation email: eleven score links, unsubscribe footer, language, branding."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from surveys.emails import build_invitation_email
from surveys.services.surveys import survey_create

pytestmark = pytest.mark.django_db

ANSWER = "https://nps.test/r/TOKEN/"
UNSUBSCRIBE = "https://nps.test/u/UNSUB-TOKEN/"


def score_url(score: int) -> str:
    return f"https://nps.test/r/TOKEN/{score}/"


class Links(HTMLParser):
    """Every <a> with its href, text and style; every <img> src; any <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.images: list[str] = []
        self.scripts = 0
        self.classes = 0
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if "class" in attributes:
            self.classes += 1
        if tag == "a":
            self._current = {**attributes, "text": ""}
            self.links.append(self._current)
        elif tag == "img":
            self.images.append(attributes.get("src", ""))
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "a":
            self._current = None

    def handle_data(self, data):
        if self._current is not None:
            self._current["text"] += data.strip()


def build(survey, company, language="en", **kwargs):
    return build_invitation_email(
        survey=survey,
        company=company,
        language=language,
        contact_name=kwargs.pop("contact_name", "Dana"),
        answer_url=ANSWER,
        score_url=score_url,
        unsubscribe_url=UNSUBSCRIBE,
        **kwargs,
    )


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def test_eleven_score_buttons_link_to_their_score(company):
    survey = survey_create(company=company, name="x")
    email = build(survey, company)
    links = parse(email.html)
    buttons = [link for link in links.links if "data-score" in link]
    assert [b["text"] for b in buttons] == [str(n) for n in range(11)]
    assert [b["href"] for b in buttons] == [score_url(n) for n in range(11)]
    # Table layout with inline styles: nothing depends on a stylesheet or a script.
    assert email.html.count("<table") >= 11
    assert links.scripts == 0
    assert links.classes == 0
    assert "<style" not in email.html
    assert "<link" not in email.html


def test_footer_has_the_unsubscribe_link_and_the_reason(company):
    survey = survey_create(company=company, name="x")
    email = build(survey, company)
    links = parse(email.html)
    unsubscribe = [link for link in links.links if link["href"] == UNSUBSCRIBE]
    assert [link["text"] for link in unsubscribe] == ["Unsubscribe"]
    assert "because you are a customer of Acme Coffee" in email.html
    assert f"Unsubscribe: {UNSUBSCRIBE}" in email.text


def test_plain_text_part_has_the_question_and_the_answer_link(company):
    survey = survey_create(company=company, name="x")
    email = build(survey, company)
    assert email.text.startswith("Hi Dana,")
    assert "How likely are you to recommend Acme Coffee to a friend or colleague?" in email.text
    assert ANSWER in email.text
    assert "0 = not at all likely" in email.text
    assert "<" not in email.text
    assert email.subject == "A quick question from Acme Coffee"
    assert "0 = not at all likely" in email.html
    assert "10 = extremely likely" in email.html


@pytest.mark.parametrize(
    ("language", "question", "unsubscribe", "greeting"),
    [
        (
            "ru",
            "Насколько вероятно, что вы порекомендуете Acme Coffee другу или коллеге?",
            "Отписаться",
            "Здравствуйте, Dana!",
        ),
        (
            "kk",
            "Acme Coffee компаниясын досыңызға немесе әріптесіңізге ұсыну ықтималдығыңыз қандай?",
            "Жазылымнан бас тарту",
            "Сәлеметсіз бе, Dana!",
        ),
    ],
)
def test_written_in_the_respondents_language(company, language, question, unsubscribe, greeting):
    survey = survey_create(company=company, name="x")
    email = build(survey, company, language=language)
    assert f'<html lang="{language}"' in email.html
    assert question in email.html
    assert question in email.text
    assert greeting in email.text
    assert [link["text"] for link in parse(email.html).links if link["href"] == UNSUBSCRIBE] == [
        unsubscribe
    ]
    assert "How likely" not in email.html


def test_unknown_language_uses_the_survey_default(company):
    survey = survey_create(company=company, name="x", default_language="ru")
    email = build(survey, company, language="de")
    assert 'lang="ru"' in email.html
    assert email.subject == "Один короткий вопрос от компании Acme Coffee"


def _button_backgrounds(html: str) -> list[str]:
    cells = re.findall(r'<td align="center" bgcolor="(#[0-9a-f]{6})"', html)
    assert len(cells) == 11
    return cells


def test_coloured_scale_is_red_amber_green(company):
    survey = survey_create(company=company, name="x", scale_style="colored")
    backgrounds = _button_backgrounds(build(survey, company).html)
    assert len(set(backgrounds[:7])) == 1
    assert len(set(backgrounds[7:9])) == 1
    assert len(set(backgrounds[9:])) == 1
    assert len({backgrounds[0], backgrounds[7], backgrounds[9]}) == 3
    assert backgrounds[0] == "#dc2626"  # red for detractors


def test_neutral_scale_uses_the_accent_colour_for_every_button(company):
    survey = survey_create(company=company, name="x", scale_style="neutral", accent_color="#0E7490")
    html = build(survey, company).html
    assert set(_button_backgrounds(html)) == {"#ffffff"}
    assert html.count("border:1px solid #0e7490") == 11
    assert "#dc2626" not in html


def test_branding_logo_and_accent(company):
    survey = survey_create(
        company=company, name="x", logo_url="https://cdn.acme.test/logo.png", accent_color="#112233"
    )
    email = build(survey, company)
    assert parse(email.html).images == ["https://cdn.acme.test/logo.png"]
    assert 'alt="Acme Coffee"' in email.html
    assert "#112233" in email.html
    without_logo = build(survey_create(company=company, name="y"), company)
    assert parse(without_logo.html).images == []


def test_reminder_has_its_own_subject_and_intro(company):
    survey = survey_create(company=company, name="x")
    email = build(survey, company, reminder=True)
    assert email.subject == "Reminder: one quick question from Acme Coffee"
    assert "A few days ago we asked you" in email.text


def test_enps_wording_and_anonymity_said_once(company):
    survey = survey_create(company=company, name="Team", kind="enps")
    email = build(survey, company, contact_name="")
    assert "as a place to work?" in email.html
    assert email.text.startswith("Hello,")
    assert email.text.count("anonymous") == 1
    reminder = build(survey, company, reminder=True)
    assert "Your answer is anonymous" in reminder.text


def test_respondent_and_company_text_is_escaped(company):
    company.name = "Tom & <Jerry>"
    survey = survey_create(
        company=company, name="x", texts={"en": {"question": "<b>Rate</b> {company}?"}}
    )
    email = build(survey, company, contact_name='<img src=x onerror="alert(1)">')
    assert "<b>Rate</b>" not in email.html
    assert "&lt;b&gt;Rate&lt;/b&gt; Tom &amp; &lt;Jerry&gt;?" in email.html
    assert "<img src=x" not in email.html
    assert "<b>Rate</b> Tom & <Jerry>?" in email.text  # plain text stays plain
