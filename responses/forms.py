"""The respondent's answer form (public pages): score, comment, the survey's extra questions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from responses.services import COMMENT_MAX_CHARS, EXTRA_TEXT_MAX_CHARS
from surveys.models import Survey

SCORE_CHOICES = [(s, str(s)) for s in range(11)]
EXTRA_PREFIX = "extra_"


def _in_language(texts: Any, language: str, fallback: str) -> str:
    """A ``{lang: text}`` entry in the respondent's language, else the survey's default."""
    if isinstance(texts, str):
        return texts
    if not isinstance(texts, dict):
        return ""
    return str(texts.get(language) or texts.get(fallback) or next(iter(texts.values()), ""))


class AnswerForm(forms.Form):
    """``score`` (0–10) and ``comment``; one optional field per extra question.

    Works without JavaScript: the score radios and a submit button are all it needs.
    """

    score = forms.TypedChoiceField(
        choices=SCORE_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose a score from 0 to 10.")},
    )
    comment = forms.CharField(
        required=False,
        max_length=COMMENT_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args: Any, survey: Survey, language: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra_questions: list[dict[str, Any]] = []
        for question in survey.extra_questions or []:
            if not isinstance(question, dict) or not question.get("id"):
                continue
            name = f"{EXTRA_PREFIX}{question['id']}"
            label = _in_language(question.get("text"), language, survey.default_language)
            field: forms.Field
            if question.get("kind") == "choice":
                choices = [
                    (str(i), _in_language(choice, language, survey.default_language))
                    for i, choice in enumerate(question.get("choices") or [])
                ]
                field = forms.ChoiceField(
                    label=label, choices=choices, required=False, widget=forms.RadioSelect
                )
            else:
                field = forms.CharField(
                    label=label, required=False, max_length=EXTRA_TEXT_MAX_CHARS
                )
            self.fields[name] = field
            self.extra_questions.append({"name": name, "kind": question.get("kind")})

    def extra_answers(self) -> dict[str, str]:
        """The extra answers by question id (blank ones included, to clear earlier answers)."""
        return {
            name.removeprefix(EXTRA_PREFIX): self.cleaned_data.get(name) or ""
            for name in self.fields
            if name.startswith(EXTRA_PREFIX)
        }

    def extra_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(EXTRA_PREFIX)]
