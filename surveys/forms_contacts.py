"""Forms of the contact pages: parse input only; validation rules live in the services."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from surveys.imports import (
    FIELDS,
    FIRST_NAME,
    IGNORE,
    LAST_NAME,
    PROPERTIES,
    PROPERTY_PREFIX,
    TARGETS,
)
from surveys.models import LANGUAGE_CHOICES, Contact


class ContactForm(forms.Form):
    email = forms.CharField(label=_("Email"), required=False, max_length=254)
    phone = forms.CharField(
        label=_("Phone"),
        required=False,
        max_length=40,
        help_text=_("International format (+7 701 123 4567), or national in your country."),
    )
    name = forms.CharField(label=pgettext_lazy("person", "Name"), required=False, max_length=200)
    language = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", "—"), *LANGUAGE_CHOICES]
    )
    time_zone = forms.CharField(
        label=_("Time zone"), required=False, max_length=64, help_text=_("e.g. Asia/Almaty")
    )
    external_id = forms.CharField(
        label=_("External id"),
        required=False,
        max_length=128,
        help_text=_("Your own system's id for this person (used to match imports)."),
    )
    properties = forms.CharField(
        label=_("Properties"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=_(
            "One name=value per line (plan=pro), or a JSON object of name → text, number or "
            'true/false: {"plan": "pro", "seats": 3}'
        ),
    )

    @classmethod
    def for_contact(cls, contact: Contact) -> ContactForm:
        initial = {f: getattr(contact, f) or "" for f in FIELDS}
        initial["properties"] = (
            json.dumps(contact.properties, ensure_ascii=False, indent=1)
            if contact.properties
            else ""
        )
        return cls(initial=initial)

    def clean_properties(self) -> dict[str, Any]:
        text = self.cleaned_data["properties"].strip()
        if not text:
            return {}
        if not text.startswith("{"):
            return _name_value_lines(text)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(_("Not valid JSON.")) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Write an object such as {"plan": "pro"}.'))
        return value


def _name_value_lines(text: str) -> dict[str, str]:
    """``plan=pro`` lines (or ``plan=pro; seats=3``) as people type them: values are text."""
    properties: dict[str, str] = {}
    for part in re.split(r"[;\r\n]+", text):
        if not part.strip():
            continue
        name, equals, value = part.partition("=")
        if not equals or not name.strip():
            raise forms.ValidationError(
                _("“%(part)s” is not name=value. Write one name=value per line, or JSON."),
                params={"part": part.strip()[:40]},
            )
        properties[name.strip()] = value.strip()
    return properties


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV or Excel (.xlsx) file"),
        help_text=_(
            "The first row names the columns. Email, phone, name, language, time zone and "
            "external id are recognised; other columns become properties."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )


def _target_choices(header: str) -> list[tuple[str, str]]:
    labels = {
        "email": _("Email"),
        "phone": _("Phone"),
        "name": _("Name"),
        "language": _("Language"),
        "time_zone": _("Time zone"),
        "external_id": _("External id"),
        FIRST_NAME: _("First name (joined with the last name)"),
        LAST_NAME: _("Last name (joined with the first name)"),
        PROPERTIES: _("Properties written as name=value"),
    }
    return [
        *((field, str(labels[field])) for field in TARGETS),
        (
            PROPERTY_PREFIX + header.strip()[:64],
            str(_("Property “%(name)s”") % {"name": header.strip()[:64]}),
        ),
        (IGNORE, str(_("Ignore this column"))),
    ]


class ImportMappingForm(forms.Form):
    """One select per column of the file, keyed col_<n> (headers can be any text); each field
    knows the column's first values (``field.field.samples``) for the mapping screen."""

    def __init__(
        self,
        *args: Any,
        headers: list[str],
        mapping: dict[str, str],
        samples: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.headers = headers
        for index, header in enumerate(headers):
            if not header:
                continue
            choices = _target_choices(header)
            current = mapping.get(header, IGNORE)
            if current not in dict(choices):
                choices.insert(-1, (current, current))
            field = forms.ChoiceField(label=header, choices=choices, initial=current)
            field.samples = (samples or {}).get(header, [])  # type: ignore[attr-defined]
            self.fields[f"col_{index}"] = field

    def mapping(self) -> dict[str, str]:
        return {
            header: self.cleaned_data[f"col_{index}"]
            for index, header in enumerate(self.headers)
            if header
        }
