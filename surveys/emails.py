"""The survey invitation email: subject, plain text and HTML built in one place.

Everything the respondent reads comes from the survey's wording in the respondent's language
(``surveys.selectors.survey_text``), not from the app's interface language. The HTML is laid
out with tables and inline styles only, so that it renders the same in Outlook (Word engine),
Gmail (no ``<style>`` in many clients) and Apple Mail; it loads nothing but the company's own
logo, and it has no script.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string

from companies.models import Company
from surveys.models import ScaleStyle, Survey
from surveys.selectors import survey_language, survey_text

# Scale colours: strong enough for white (or dark) digits to read (WCAG AA for bold text).
_DETRACTOR = ("#dc2626", "#ffffff")
_PASSIVE = ("#f59e0b", "#3b2300")
_PROMOTER = ("#15803d", "#ffffff")
_FALLBACK_ACCENT = "#4f46e5"
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class ScoreButton:
    score: int
    url: str
    background: str
    color: str
    border: str


def safe_accent(survey: Survey) -> str:
    """The survey's accent colour if it is ``#rrggbb``, else ours: it goes into styles."""
    color = (survey.accent_color or "").strip()
    return color.lower() if _COLOR_RE.match(color) else _FALLBACK_ACCENT


def score_buttons(*, survey: Survey, score_url: Callable[[int], str]) -> list[ScoreButton]:
    """The eleven 0–10 buttons: red/amber/green by category, or neutral in the accent colour."""
    accent = safe_accent(survey)
    buttons = []
    for score in range(11):
        if survey.scale_style == ScaleStyle.NEUTRAL:
            background, color, border = "#ffffff", accent, accent
        else:
            background, color = _PROMOTER if score >= 9 else _PASSIVE if score >= 7 else _DETRACTOR
            border = background
        buttons.append(
            ScoreButton(
                score=score, url=score_url(score), background=background, color=color, border=border
            )
        )
    return buttons


def build_invitation_email(
    *,
    survey: Survey,
    company: Company,
    language: str,
    contact_name: str,
    answer_url: str,
    score_url: Callable[[int], str],
    unsubscribe_url: str,
    reminder: bool = False,
) -> RenderedEmail:
    """The invitation (or its one reminder) for one respondent, in their language.

    ``score_url(n)`` is the absolute link that opens the answer page with ``n`` selected;
    ``answer_url`` the page without a score (the text part's link); ``unsubscribe_url`` the
    page behind the footer's link (the same URL goes in the ``List-Unsubscribe`` header,
    which the sender adds). Unknown languages fall back to the survey's default language.
    """
    language = survey_language(survey=survey, language=language)

    def text(key: str) -> str:
        return survey_text(survey=survey, company=company, language=language, key=key)

    name = (contact_name or "").strip()
    greeting = (
        text("email_greeting").replace("{name}", name) if name else text("email_greeting_anonymous")
    )
    subject = text("reminder_subject" if reminder else "email_subject")
    intro = text("email_reminder_intro" if reminder else "email_intro")
    anonymous_note = text("anonymous_note") if survey.anonymous else ""
    if anonymous_note in intro:  # the eNPS intro says it already: once is enough
        anonymous_note = ""
    context = {
        "language": language,
        "company_name": company.name,
        "logo_url": survey.logo_url,
        "accent": safe_accent(survey),
        "subject": subject,
        "greeting": greeting,
        "intro": intro,
        "anonymous_note": anonymous_note,
        "question": text("question"),
        "scale_low": text("scale_low"),
        "scale_high": text("scale_high"),
        "answer_label": text("email_answer"),
        "link_hint": text("email_link"),
        "footer_reason": text("footer_reason"),
        "footer_unsubscribe": text("footer_unsubscribe"),
        "answer_url": answer_url,
        "unsubscribe_url": unsubscribe_url,
        "buttons": score_buttons(survey=survey, score_url=score_url),
        "reminder": reminder,
    }
    return RenderedEmail(
        subject=" ".join(subject.split()),  # no line breaks in a subject
        text=render_to_string("surveys/email/invitation.txt", context),
        html=render_to_string("surveys/email/invitation.html", context),
    )


def preview_invitation_email(
    *, survey: Survey, company: Company, language: str, reminder: bool = False
) -> RenderedEmail:
    """The email with inert example links, for the survey editor's preview."""
    base = "https://example.invalid/r/preview"
    return build_invitation_email(
        survey=survey,
        company=company,
        language=language,
        contact_name="Alex",
        answer_url=f"{base}/",
        score_url=lambda score: f"{base}/{score}/",
        unsubscribe_url="https://example.invalid/u/preview/",
        reminder=reminder,
    )
