"""Forms of the Delighted import pages: the upload (several files at once) and, per file, its
kind, its survey and the meaning of each column."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from delighted_compat.importer import IGNORE, PROPERTIES, PROPERTY_PREFIX, TARGETS
from delighted_compat.models import DelightedImport, ExportKind
from surveys.models import Survey

MAX_FILES = 10

TARGET_LABELS = {
    "response_id": _("Delighted response id"),
    "score": _("Score"),
    "comment": _("Comment"),
    "created_at": _("Time (answered / created)"),
    "updated_at": _("Time updated"),
    "person_id": _("Delighted person id"),
    "email": _("Email"),
    "phone": _("Phone"),
    "name": _("Name"),
    "tags": _("Tags"),
    "notes": _("Notes"),
    "permalink": _("Permalink"),
    "channel": _("Channel (email, SMS, web)"),
    "language": _("Language"),
    "survey_type": _("Survey type"),
    PROPERTIES: _("Properties (JSON or name=value)"),
    "last_sent_at": _("Last survey sent at"),
    "unsubscribed_at": _("Unsubscribed at"),
    "bounced_at": _("Bounced at"),
}


class _MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class _MultipleFileField(forms.FileField):
    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        items = data if isinstance(data, list | tuple) else [data]
        return [super(_MultipleFileField, self).clean(item, initial) for item in items]


class DelightedUploadForm(forms.Form):
    exports = _MultipleFileField(
        label=_("Delighted export files (CSV)"),
        help_text=_(
            "Select all your exports at once: survey responses, people, unsubscribes and "
            "bounces. Which file is which is read from its columns; you can correct it next."
        ),
        # An empty file is the importer's to explain (with its name), not the field's.
        allow_empty_file=True,
        widget=_MultipleFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )

    def clean_exports(self) -> list[UploadedFile]:
        files: list[UploadedFile] = self.cleaned_data["exports"]
        if len(files) > MAX_FILES:
            raise forms.ValidationError(
                _("At most %(count)d files at once.") % {"count": MAX_FILES}
            )
        return files


def _column_choices(kind: str, header: str, current: str) -> list[tuple[str, str]]:
    targets = TARGETS.get(kind) or tuple(TARGET_LABELS)
    choices = [(t, str(TARGET_LABELS[t])) for t in targets]
    choices.append((PROPERTY_PREFIX + header.strip()[:64], str(_("A property of the contact"))))
    if current.startswith(PROPERTY_PREFIX) and current not in dict(choices):
        choices.append((current, str(_("The property “%(key)s”") % {"key": current[9:]})))
    choices.append((IGNORE, str(_("Ignore this column"))))
    return choices


class DelightedFileForm(forms.Form):
    """One file of the batch: ``kind``, ``survey`` (answers) and ``col_<n>`` per header."""

    kind = forms.ChoiceField(label=_("This file holds"), required=False)
    survey = forms.ModelChoiceField(
        label=_("Survey the answers go to"),
        queryset=Survey.objects.none(),
        required=False,
        empty_label=_("The survey of Delighted's API (a new one named “Delighted” if none)"),
    )

    def __init__(
        self,
        *args: Any,
        imp: DelightedImport,
        surveys: Any,
        unknown: list[str],
        samples: dict[str, list[str]] | None = None,
        default_survey: Survey | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("prefix", imp.public_id)
        super().__init__(*args, **kwargs)
        self.imp = imp
        kind_field: Any = self.fields["kind"]
        kind_field.choices = [("", _("— choose —")), *ExportKind.choices]
        kind_field.initial = imp.kind
        survey_field: Any = self.fields["survey"]
        survey_field.queryset = surveys
        survey_field.to_field_name = "public_id"
        # The one survey for Delighted (the API's too), by its name when it exists already.
        chosen = imp.survey or default_survey
        survey_field.initial = chosen.public_id if chosen else None
        self.unknown = set(unknown)
        for index, header in enumerate(imp.headers):
            if not header:
                continue
            current = imp.mapping.get(header, IGNORE)
            field = forms.ChoiceField(
                label=header, choices=_column_choices(imp.kind, header, current), initial=current
            )
            field.unrecognised = header in self.unknown  # type: ignore[attr-defined]
            field.samples = (samples or {}).get(header, [])  # type: ignore[attr-defined]
            self.fields[f"col_{index}"] = field

    def columns(self) -> list[Any]:
        return [self[name] for name in self.fields if name.startswith("col_")]

    def mapping(self) -> dict[str, str]:
        return {
            header: self.cleaned_data[f"col_{index}"]
            for index, header in enumerate(self.imp.headers)
            if header and f"col_{index}" in self.cleaned_data
        }
