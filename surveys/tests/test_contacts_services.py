"""contact_upsert / contact_update / contact_delete and the contact selectors."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from companies.models import Company
from surveys.models import Contact
from surveys.selectors import contact_get, contacts_list, contacts_matching
from surveys.services.contacts import contact_delete, contact_update, contact_upsert

pytestmark = pytest.mark.django_db


def _count(company: Company) -> int:
    return Contact.objects.for_company(company).count()


def test_upsert_creates_then_matches_by_email_case_insensitively(company: Company) -> None:
    contact, created = contact_upsert(company=company, email="Ann@Example.COM", name="Ann")
    assert created
    assert contact.email == "ann@example.com"
    again, created = contact_upsert(company=company, email=" ANN@example.com ", name="Ann B")
    assert not created
    assert again.pk == contact.pk
    again.refresh_from_db()
    assert again.name == "Ann B"
    assert _count(company) == 1


def test_upsert_matches_external_id_before_email(company: Company) -> None:
    by_id, _ = contact_upsert(company=company, external_id="c-1", email="one@example.com")
    contact_upsert(company=company, email="two@example.com")
    # external id wins: the email of c-1 changes instead of touching two@.
    contact, created = contact_upsert(company=company, external_id="c-1", email="new@example.com")
    assert not created
    assert contact.pk == by_id.pk
    assert contact.email == "new@example.com"
    assert _count(company) == 2


def test_upsert_by_email_with_a_different_external_id_is_refused(company: Company) -> None:
    contact_upsert(company=company, external_id="c-1", email="one@example.com")
    with pytest.raises(ValidationError) as info:
        contact_upsert(company=company, external_id="c-2", email="one@example.com")
    assert "external_id" in info.value.message_dict
    assert _count(company) == 1


def test_upsert_external_id_onto_an_email_of_another_contact_is_refused(company: Company) -> None:
    contact_upsert(company=company, external_id="c-1", email="one@example.com")
    contact_upsert(company=company, email="two@example.com")
    with pytest.raises(ValidationError) as info:
        contact_upsert(company=company, external_id="c-1", email="two@example.com")
    assert "email" in info.value.message_dict


def test_properties_merge_and_none_removes(company: Company) -> None:
    contact, _ = contact_upsert(
        company=company, email="p@example.com", properties={"plan": "pro", "seats": 3}
    )
    contact, _ = contact_upsert(
        company=company, email="p@example.com", properties={"seats": 5, "plan": None, "vip": True}
    )
    contact.refresh_from_db()
    assert contact.properties == {"seats": 5, "vip": True}


def test_phone_is_stored_as_e164_with_the_company_region(company: Company) -> None:
    company.country = "KZ"
    company.save()
    contact, _ = contact_upsert(company=company, phone="8 701 123 45 67")
    assert contact.phone == "+77011234567"
    other, _ = contact_upsert(company=company, phone="+44 20 7946 0958")
    assert other.phone == "+442079460958"


def test_national_phone_without_company_country_needs_international_format(
    company: Company,
) -> None:
    company.country = ""
    company.save()
    with pytest.raises(ValidationError) as info:
        contact_upsert(company=company, phone="701 123 45 67")
    assert "international" in info.value.message_dict["phone"][0]


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "phone": "+1 123"}, "phone"),
        ({"email": "a@example.com", "language": "de"}, "language"),
        ({"email": "a@example.com", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"email": "a@example.com", "properties": {"x": [1, 2]}}, "properties"),
        ({"email": "a@example.com", "properties": {"x": {"y": 1}}}, "properties"),
        ({"email": "a@example.com", "properties": {"": "v"}}, "properties"),
        ({"email": "a@example.com", "properties": {"k" * 65: "v"}}, "properties"),
        ({"email": "a@example.com", "properties": ["not", "a", "dict"]}, "properties"),
        ({"name": "Nobody"}, "email"),  # no address at all
    ],
)
def test_invalid_input_is_refused_and_nothing_saved(
    company: Company, fields: dict[str, object], bad_field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        contact_upsert(company=company, **fields)  # type: ignore[arg-type]
    assert bad_field in info.value.message_dict
    assert _count(company) == 0


def test_language_tags_and_time_zone_are_normalised(company: Company) -> None:
    contact, _ = contact_upsert(
        company=company, email="l@example.com", language="ru_RU", time_zone="Asia/Almaty"
    )
    assert contact.language == "ru"
    assert contact.time_zone == "Asia/Almaty"


def test_update_and_delete(company: Company) -> None:
    contact, _ = contact_upsert(company=company, email="u@example.com", properties={"a": 1})
    contact_upsert(company=company, email="taken@example.com")
    contact_update(company=company, contact=contact, name="Una", properties={"b": "x"})
    contact.refresh_from_db()
    assert contact.name == "Una"
    assert contact.properties == {"a": 1, "b": "x"}
    with pytest.raises(ValidationError):
        contact_update(company=company, contact=contact, email="taken@example.com")
    contact.refresh_from_db()
    assert contact.email == "u@example.com"
    contact_delete(company=company, contact=contact)
    assert contact_get(company=company, public_id=contact.public_id) is None


def test_contacts_of_another_company_are_invisible(
    company: Company, other_company: Company
) -> None:
    theirs, _ = contact_upsert(company=other_company, email="same@example.com")
    ours, created = contact_upsert(company=company, email="same@example.com")
    assert created
    assert ours.pk != theirs.pk
    assert contact_get(company=company, public_id=theirs.public_id) is None
    with pytest.raises(ValueError, match="another company"):
        contact_delete(company=company, contact=theirs)


def test_contacts_list_search_and_property_filters(company: Company) -> None:
    a, _ = contact_upsert(
        company=company, email="alice@example.com", name="Alice", properties={"age": 30}
    )
    b, _ = contact_upsert(
        company=company, email="bob@example.com", external_id="B-7", properties={"age": "30"}
    )
    c, _ = contact_upsert(
        company=company, phone="+77011234567", email="c@example.com", properties={"vip": True}
    )
    assert list(contacts_list(company=company, search="alice")) == [a]
    assert list(contacts_list(company=company, search="b-7")) == [b]
    assert list(contacts_list(company=company, search="7011234567")) == [c]
    assert set(contacts_list(company=company, properties={"age": "30"})) == {a, b}
    assert list(contacts_list(company=company, properties={"vip": "true"})) == [c]
    assert list(contacts_list(company=company, properties={"age": "31"})) == []


def test_contacts_matching_audience(company: Company) -> None:
    pro, _ = contact_upsert(
        company=company, email="pro@example.com", properties={"plan": "pro", "a__b": 1}
    )
    free, _ = contact_upsert(company=company, email="free@example.com", properties={"plan": "free"})
    none, _ = contact_upsert(company=company, email="none@example.com")

    def match(*filters: dict[str, object]) -> set[Contact]:
        return set(contacts_matching(company=company, audience={"filters": list(filters)}))

    assert set(contacts_matching(company=company, audience={"all": True})) == {pro, free, none}
    assert match({"property": "plan", "op": "eq", "value": "pro"}) == {pro}
    assert match({"property": "plan", "op": "neq", "value": "pro"}) == {free, none}
    assert match({"property": "plan", "op": "in", "value": ["pro", "free"]}) == {pro, free}
    assert match({"property": "plan", "op": "exists"}) == {pro, free}
    # A key with Django lookup syntax in it is still just a key.
    assert match({"property": "a__b", "op": "eq", "value": 1}) == {pro}
    assert match(
        {"property": "plan", "op": "exists"}, {"property": "plan", "op": "neq", "value": "free"}
    ) == {pro}
    bad_audiences: list[dict[str, object]] = [
        {},
        {"filters": []},
        {"filters": [{"property": "x", "op": "like"}]},
    ]
    for bad in bad_audiences:
        with pytest.raises(ValidationError):
            contacts_matching(company=company, audience=bad)


def test_a_new_contact_is_not_looked_up_twice(
    company: Company, django_assert_num_queries: Any
) -> None:
    # The lookup by external id, then by email, then the insert (in a savepoint): nobody
    # holds either value, so no second "does another contact have it?" query.
    with django_assert_num_queries(5):
        contact_upsert(company=company, external_id="c-9", email="nine@example.com")
    # Found by external id with a new email: that email is still checked against others.
    contact_upsert(company=company, email="taken@example.com")
    with pytest.raises(ValidationError) as info:
        contact_upsert(company=company, external_id="c-9", email="taken@example.com")
    assert "email" in info.value.message_dict
