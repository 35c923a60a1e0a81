from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from privacy.models import IdentifierKind

# The identifiers people are looked up by in the app and the API (a person id is the
# Delighted API's own way in).
LOOKUP_KINDS = [
    (IdentifierKind.EMAIL.value, IdentifierKind.EMAIL.label),
    (IdentifierKind.PHONE.value, IdentifierKind.PHONE.label),
    (IdentifierKind.EXTERNAL_ID.value, IdentifierKind.EXTERNAL_ID.label),
]


class PersonForm(forms.Form):
    kind = forms.ChoiceField(label=_("Find the person by"), choices=LOOKUP_KINDS)
    value = forms.CharField(label=_("Email address, phone number or external id"), max_length=254)
    confirm = forms.BooleanField(
        label=_("I understand that erasure cannot be undone."), required=False
    )
