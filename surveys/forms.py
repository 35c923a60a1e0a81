"""The survey editor's form: flat HTML fields ↔ the survey's structured wording and questions.

The form only parses and lays out; the rules (known languages and keys, at most five extra
questions, 2–10 choices, colours, https logos, ranges) live in ``surveys.services`` and come
back as field errors.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Field
from django.utils.translation import gettext_lazy as _

from companies.models import Company
from surveys.defaults import (
    EDITABLE_TEXT_KEYS,
    LANGUAGES,
    TEXT_DEFAULT_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    default_text,
)
from surveys.models import ScaleStyle, Survey, SurveyKind
from surveys.selectors import property_value_candidates
from surveys.services.surveys import CHOICES_MAX, EXTRA_QUESTIONS_MAX, EXTRA_TEXT_MAX_LENGTH

LANGUAGE_NAMES = dict(settings.SURVEY_LANGUAGES)
TEXT_LABELS = {
    "question": _("Question (0–10)"),
    "why_promoter": _("Follow-up for promoters (9–10)"),
    "why_passive": _("Follow-up for passives (7–8)"),
    "why_detractor": _("Follow-up for detractors (0–6)"),
    "thanks": _("Thank-you message"),
    "promoter_invite": _("Invitation to promoters (thank-you page)"),
    "promoter_button": _("Promoters' link button"),
    "email_subject": _("Email subject"),
    "email_intro": _("Email introduction"),
    "reminder_subject": _("Reminder subject"),
}
EMAIL_TEXT_KEYS = ("email_subject", "email_intro", "reminder_subject")
PAGE_TEXT_KEYS = tuple(key for key in EDITABLE_TEXT_KEYS if key not in EMAIL_TEXT_KEYS)
# Long texts get a text area; the rest a one-line input.
MULTILINE_KEYS = frozenset(
    {"why_promoter", "why_passive", "why_detractor", "thanks", "promoter_invite", "email_intro"}
)
EXTRA_KIND_CHOICES = [
    ("", _("— no question —")),
    ("choice", _("Single choice")),
    ("text", _("Short text")),
]
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
SERVICE_FIELDS = (
    "name",
    "kind",
    "default_language",
    "logo_url",
    "promoter_link_url",
    "accent_color",
    "scale_style",
    "throttle_days",
    "sample_percent",
    "reminder_after_days",
    "link_valid_days",
)


def text_field_name(language: str, key: str) -> str:
    return f"text_{language}_{key}"


def extra_field_name(index: int, part: str, language: str | None = None) -> str:
    return f"extra_{index}_{part}" + (f"_{language}" if language else "")


class SurveyForm(forms.Form):
    """Every setting of a survey on one page. ``instance`` fills in the current values."""

    name = forms.CharField(label=_("Name"), max_length=120)
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=SurveyKind.choices,
        help_text=_("Employee NPS surveys are anonymous: who answered is never shown."),
    )
    default_language = forms.ChoiceField(
        label=_("Default language"),
        choices=settings.SURVEY_LANGUAGES,
        help_text=_("Used for contacts whose language is unknown."),
    )
    logo_url = forms.URLField(
        label=_("Logo URL"),
        required=False,
        max_length=200,
        assume_scheme="https",
        help_text=_("An https:// address of your logo (PNG or JPG, about 40 px high)."),
    )
    promoter_link_url = forms.URLField(
        label=_("Review or referral link for promoters"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=_(
            "An https:// address (your page on a review site, a referral programme). Shown on "
            "the thank-you page to those who answer 9 or 10; empty: no link."
        ),
    )
    accent_color = forms.CharField(
        label=_("Accent colour"),
        max_length=7,
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    scale_style = forms.ChoiceField(
        label=_("Score buttons"), choices=ScaleStyle.choices, widget=forms.RadioSelect
    )
    throttle_days = forms.IntegerField(
        label=_("Do not survey the same person again within"),
        min_value=0,
        max_value=3650,
        help_text=_("Days; counts every survey of the same kind. 0 turns it off."),
    )
    sample_percent = forms.IntegerField(
        label=_("Sample"),
        min_value=1,
        max_value=100,
        help_text=_("Percent of each audience that gets the survey."),
    )
    reminder_after_days = forms.IntegerField(
        label=_("Send one reminder after"),
        min_value=1,
        max_value=60,
        required=False,
        help_text=_("Days, to those who have not answered. Empty: no reminder."),
    )
    link_valid_days = forms.IntegerField(
        label=_("Answer links stay valid for"),
        min_value=1,
        max_value=365,
        help_text=_("Days after sending."),
    )

    def __init__(
        self, *args: Any, company: Company, instance: Survey | None = None, **kwargs: Any
    ) -> None:
        self.company = company
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(instance)
        super().__init__(*args, **kwargs)
        if instance is None:
            for name in SERVICE_FIELDS:
                model_field = Survey._meta.get_field(name)
                if isinstance(model_field, Field) and model_field.has_default():
                    self.fields[name].initial = model_field.get_default()
            self.fields["default_language"].initial = company.default_language or "en"
        kind = str(self.data.get("kind") or self.initial.get("kind") or SurveyKind.NPS)
        for language in LANGUAGES:
            for key in EDITABLE_TEXT_KEYS:
                placeholder = default_text(kind=kind, language=language, key=key).replace(
                    "{company}", company.name
                )
                widget = (
                    forms.Textarea(attrs={"rows": 2, "placeholder": placeholder})
                    if key in MULTILINE_KEYS
                    else forms.TextInput(attrs={"placeholder": placeholder})
                )
                self.fields[text_field_name(language, key)] = forms.CharField(
                    label=TEXT_LABELS[key],
                    required=False,
                    max_length=TEXT_MAX_LENGTH.get(key, TEXT_DEFAULT_MAX_LENGTH),
                    widget=widget,
                )
        for index in range(EXTRA_QUESTIONS_MAX):
            self.fields[extra_field_name(index, "id")] = forms.CharField(
                required=False, widget=forms.HiddenInput
            )
            self.fields[extra_field_name(index, "kind")] = forms.ChoiceField(
                label=_("Type"), choices=EXTRA_KIND_CHOICES, required=False
            )
            for language in LANGUAGES:
                self.fields[extra_field_name(index, "text", language)] = forms.CharField(
                    label=_("Question"),
                    required=False,
                    max_length=EXTRA_TEXT_MAX_LENGTH,
                )
                self.fields[extra_field_name(index, "choices", language)] = forms.CharField(
                    label=_("Choices, one per line"),
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 3}),
                    help_text=_("2 to %(max)d choices; the same order in every language.")
                    % {"max": CHOICES_MAX},
                )

    # --- instance → fields ----------------------------------------------------------------

    @staticmethod
    def initial_from(survey: Survey) -> dict[str, Any]:
        initial: dict[str, Any] = {name: getattr(survey, name) for name in SERVICE_FIELDS}
        for language, texts in (survey.texts or {}).items():
            for key, text in (texts or {}).items():
                if language in LANGUAGES and key in EDITABLE_TEXT_KEYS:
                    initial[text_field_name(language, key)] = text
        for index, question in enumerate((survey.extra_questions or [])[:EXTRA_QUESTIONS_MAX]):
            initial[extra_field_name(index, "id")] = question.get("id", "")
            initial[extra_field_name(index, "kind")] = question.get("kind", "")
            texts = question.get("text") or {}
            for language in LANGUAGES:
                initial[extra_field_name(index, "text", language)] = texts.get(language, "")
                initial[extra_field_name(index, "choices", language)] = "\n".join(
                    (choice or {}).get(language, "") for choice in question.get("choices") or []
                ).strip("\n")
        return initial

    # --- fields → service arguments -------------------------------------------------------

    def _value(self, name: str) -> Any:
        """A cleaned value, or for an invalid field the raw input (the preview shows drafts)."""
        if hasattr(self, "cleaned_data") and name in self.cleaned_data:
            return self.cleaned_data[name]
        return self.data.get(name, self.initial.get(name, ""))

    def texts_value(self) -> dict[str, dict[str, str]]:
        texts: dict[str, dict[str, str]] = {}
        for language in LANGUAGES:
            for key in EDITABLE_TEXT_KEYS:
                text = str(self._value(text_field_name(language, key)) or "").strip()
                if text:
                    texts.setdefault(language, {})[key] = text
        return texts

    def extra_questions_value(self) -> list[dict[str, Any]]:
        questions = []
        for index in range(EXTRA_QUESTIONS_MAX):
            kind = str(self._value(extra_field_name(index, "kind")) or "")
            if not kind:
                continue
            text = {
                language: str(self._value(extra_field_name(index, "text", language)) or "").strip()
                for language in LANGUAGES
            }
            question: dict[str, Any] = {
                "kind": kind,
                "text": {language: value for language, value in text.items() if value},
                "choices": [],
            }
            question_id = str(self._value(extra_field_name(index, "id")) or "").strip()
            if question_id:
                question["id"] = question_id
            if kind == "choice":
                lines = {
                    language: [
                        line.strip()
                        for line in str(
                            self._value(extra_field_name(index, "choices", language)) or ""
                        ).splitlines()
                        if line.strip()
                    ]
                    for language in LANGUAGES
                }
                count = max(len(values) for values in lines.values())
                question["choices"] = [
                    {
                        language: values[position]
                        for language, values in lines.items()
                        if position < len(values)
                    }
                    for position in range(count)
                ]
            questions.append(question)
        return questions

    def service_fields(self) -> dict[str, Any]:
        """Keyword arguments for survey_create / survey_update (call after is_valid())."""
        fields = {name: self.cleaned_data[name] for name in SERVICE_FIELDS}
        fields["texts"] = self.texts_value()
        fields["extra_questions"] = self.extra_questions_value()
        return fields

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's errors next to their fields (texts and questions: at the top)."""
        for field, messages in error.message_dict.items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message)

    # --- layout helpers for the template ------------------------------------------------

    def language_sections(self) -> list[dict[str, Any]]:
        """Per language: its name and its wording fields, the default language first."""
        default = str(self._value("default_language") or "en")
        order = sorted(LANGUAGES, key=lambda language: language != default)
        return [
            {
                "code": language,
                "name": LANGUAGE_NAMES.get(language, language),
                "is_default": language == default,
                "page_fields": [self[text_field_name(language, key)] for key in PAGE_TEXT_KEYS],
                "email_fields": [self[text_field_name(language, key)] for key in EMAIL_TEXT_KEYS],
                "has_errors": any(
                    self[text_field_name(language, key)].errors for key in EDITABLE_TEXT_KEYS
                ),
            }
            for language in order
        ]

    def extra_sections(self) -> list[dict[str, Any]]:
        return [
            {
                "number": index + 1,
                "id": self[extra_field_name(index, "id")],
                "kind": self[extra_field_name(index, "kind")],
                "used": bool(self._value(extra_field_name(index, "kind"))),
                "has_errors": any(
                    self[extra_field_name(index, part, language)].errors
                    for part in ("text", "choices")
                    for language in LANGUAGES
                ),
                "languages": [
                    {
                        "code": language,
                        "name": LANGUAGE_NAMES.get(language, language),
                        "text": self[extra_field_name(index, "text", language)],
                        "choices": self[extra_field_name(index, "choices", language)],
                    }
                    for language in LANGUAGES
                ],
            }
            for index in range(EXTRA_QUESTIONS_MAX)
        ]

    def preview_survey(self) -> Survey:
        """An unsaved survey from the current input, for the live preview.

        Takes what is valid and falls back to the saved (or default) values for the rest, so
        a half-typed form still previews. Never saved.
        """
        self.is_valid()
        cleaned: dict[str, Any] = getattr(self, "cleaned_data", None) or {}
        base = self.instance
        survey = Survey(company=self.company)
        if base is not None:
            for name in SERVICE_FIELDS:
                setattr(survey, name, getattr(base, name))
        elif not self.is_bound:
            survey.default_language = self.fields["default_language"].initial
        for name in ("name", "kind", "default_language", "scale_style"):
            if cleaned.get(name):
                setattr(survey, name, cleaned[name])
        color = str(self.data.get("accent_color") or "")
        if _COLOR_RE.match(color):
            survey.accent_color = color
        logo = cleaned.get("logo_url") if self.is_bound else survey.logo_url
        survey.logo_url = logo if isinstance(logo, str) and logo.startswith("https://") else ""
        survey.anonymous = survey.kind == SurveyKind.ENPS
        survey.texts = self.texts_value()
        survey.extra_questions = [
            question for question in self.extra_questions_value() if question["text"]
        ]
        return survey


class StatusForm(forms.Form):
    status = forms.CharField(max_length=16)


# --- Audiences (campaigns, recurring surveys) -------------------------------------------------

FILTER_ROWS = 3

OP_CHOICES = [
    ("eq", _("is")),
    ("neq", _("is not")),
    ("in", _("is one of (comma-separated)")),
    ("exists", _("is set")),
]


class AudienceForm(forms.Form):
    """To whom: everyone, or contacts matching up to three property filters (all must hold).

    ``cleaned_data["audience_value"]`` is the audience for the services. Campaigns and the
    recurring programme's "add members" share it.
    """

    audience = forms.ChoiceField(
        label=_("To"),
        choices=[
            ("all", _("All contacts")),
            ("filtered", _("Contacts matching these properties")),
        ],
        widget=forms.RadioSelect,
        initial="all",
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company
        for row in range(FILTER_ROWS):
            self.fields[f"property_{row}"] = forms.CharField(
                label=_("Property"), max_length=64, required=False
            )
            self.fields[f"op_{row}"] = forms.ChoiceField(
                label=_("Condition"), choices=OP_CHOICES, required=False, initial="eq"
            )
            self.fields[f"value_{row}"] = forms.CharField(
                label=_("Value"), max_length=1000, required=False
            )

    @property
    def filter_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (self[f"property_{row}"], self[f"op_{row}"], self[f"value_{row}"])
            for row in range(FILTER_ROWS)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("audience") == "filtered":
            filters = self._filters(data)
            if not filters:
                self.add_error(None, _("Add at least one property filter, or send to everyone."))
            data["audience_value"] = {"filters": filters}
        else:
            data["audience_value"] = {"all": True}
        return data

    def _filters(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Typed-in values match text and numbers alike ("30" finds 30 and "30")."""
        filters: list[dict[str, Any]] = []
        for row in range(FILTER_ROWS):
            prop = (data.get(f"property_{row}") or "").strip()
            op = data.get(f"op_{row}") or "eq"
            value = data.get(f"value_{row}") or ""
            if not prop:
                continue
            if op == "exists":
                filters.append({"property": prop, "op": "exists"})
            elif op == "neq":
                filters.extend(
                    {"property": prop, "op": "neq", "value": candidate}
                    for candidate in property_value_candidates(value)
                )
            else:
                parts = [p.strip() for p in value.split(",")] if op == "in" else [value]
                values = [c for part in parts for c in property_value_candidates(part)]
                filters.append({"property": prop, "op": "in", "value": values})
        return filters
