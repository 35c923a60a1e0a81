"""A new place for a respondent's identity cannot be added without erasure knowing of it."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models

from privacy.inventory import NOT_A_RESPONDENTS, PERSONAL_DATA
from tests.project_apps import project_apps

NAMES = ("email", "phone")
EXACT_NAMES = ("to", "address", "external_id")


def _looks_personal(field: models.Field) -> bool:
    related = getattr(field, "related_model", None)
    if related is not None and related._meta.label == "surveys.Contact":
        return True
    if isinstance(field, models.EmailField | models.GenericIPAddressField):
        return True
    return any(name in field.name for name in NAMES) or field.name in EXACT_NAMES


def _fields() -> dict[str, models.Field]:
    walked = project_apps()
    return {
        f"{model._meta.label}.{field.name}": field
        for model in apps.get_models()
        if model._meta.app_label in walked
        for field in model._meta.concrete_fields
    }


def test_every_field_that_can_name_a_respondent_is_handled_or_explained():
    found = {label for label, field in _fields().items() if _looks_personal(field)}
    unlisted = found - set(PERSONAL_DATA) - set(NOT_A_RESPONDENTS)
    assert not unlisted, (
        f"{sorted(unlisted)}: add each to privacy/inventory.py, exported and erased by "
        "privacy.selectors / privacy.services (with a test), or say why it is not a respondent's"
    )


def test_the_inventory_names_only_fields_that_exist():
    fields = _fields()
    stale = (set(PERSONAL_DATA) | set(NOT_A_RESPONDENTS)) - set(fields)
    assert not stale, f"{sorted(stale)}: no such field any more"
    assert not set(PERSONAL_DATA) & set(NOT_A_RESPONDENTS)


def test_the_check_sees_a_new_contact_reference():
    """The detection itself: a field of a new model pointing at a contact is caught."""
    field: models.ForeignKey[Any, Any] = models.ForeignKey(
        "surveys.Contact", on_delete=models.CASCADE
    )
    field.name = "person"
    field.remote_field.model = apps.get_model("surveys", "Contact")
    assert _looks_personal(field)
    assert _looks_personal(models.CharField(name="backup_phone"))
    assert _looks_personal(models.GenericIPAddressField(name="seen_from"))
    assert not _looks_personal(models.CharField(name="title"))


def test_the_new_apps_are_walked():
    walked = project_apps()
    assert {"audit", "privacy", "sso", "companies", "surveys", "responses"} <= walked
    assert "account" not in walked  # allauth's, not ours
