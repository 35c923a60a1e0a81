from datetime import UTC, datetime

import pytest

from companies.models import ApiKey, Membership, Role
from companies.services import api_key_create
from companies.tenancy import UnscopedTenantQuery

pytestmark = pytest.mark.django_db


def test_unscoped_query_on_tenant_model_fails_loudly(company):
    api_key_create(company=company, name="k")
    with pytest.raises(UnscopedTenantQuery):
        list(ApiKey.objects.all())
    with pytest.raises(UnscopedTenantQuery):
        ApiKey.objects.count()
    with pytest.raises(UnscopedTenantQuery):
        ApiKey.objects.filter(name="k").exists()
    with pytest.raises(UnscopedTenantQuery):
        ApiKey.objects.get(name="k")
    with pytest.raises(UnscopedTenantQuery):
        ApiKey.objects.update(name="x")
    with pytest.raises(UnscopedTenantQuery):
        ApiKey.objects.all().delete()


def test_for_company_sees_only_that_company(company, other_company):
    api_key_create(company=company, name="ours")
    api_key_create(company=other_company, name="theirs")
    assert [k.name for k in ApiKey.objects.for_company(company)] == ["ours"]
    assert [k.name for k in ApiKey.objects.for_company(other_company)] == ["theirs"]
    # Scoping survives further chaining.
    assert ApiKey.objects.for_company(company).exclude(name="x").order_by("name").count() == 1


def test_excluding_a_company_is_not_scoping(company, other_company):
    with pytest.raises(UnscopedTenantQuery):
        list(ApiKey.objects.exclude(company=company))


def test_unscoped_escape_is_explicit(company, other_company):
    api_key_create(company=company, name="a")
    api_key_create(company=other_company, name="b")
    assert ApiKey.objects.unscoped(reason="test sweep").count() == 2


def test_related_managers_are_scoped_by_their_parent(company):
    assert company.memberships.filter(role=Role.OWNER).count() == 1
    assert Membership.objects.for_user(company.memberships.get().user).count() == 1


def test_deleting_a_company_cascades(company):
    api_key_create(company=company, name="a")
    company.delete()
    assert ApiKey.objects.unscoped(reason="test").count() == 0


def test_update_per_row_sets_each_value_and_never_crosses_companies(company, other_company):
    from companies.tenancy import tenant_update_per_row

    ours = [api_key_create(company=company, name=f"k{i}").api_key for i in range(3)]
    theirs = api_key_create(company=other_company, name="theirs").api_key
    tenant_update_per_row(
        ApiKey,
        company=company,
        field_name="name",
        values=[(key.pk, f"renamed {i}") for i, key in enumerate(ours)] + [(theirs.pk, "stolen")],
    )
    names = sorted(ApiKey.objects.for_company(company).values_list("name", flat=True))
    assert names == ["renamed 0", "renamed 1", "renamed 2"]
    theirs.refresh_from_db()
    assert theirs.name == "theirs"


def test_update_per_row_sets_the_shared_fields_on_those_rows_only(company, other_company):
    from companies.tenancy import tenant_update_per_row

    ours = [api_key_create(company=company, name=f"k{i}").api_key for i in range(3)]
    theirs = api_key_create(company=other_company, name="theirs").api_key
    when = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    tenant_update_per_row(
        ApiKey,
        company=company,
        field_name="name",
        values=[(ours[0].pk, "first"), (ours[1].pk, "second"), (theirs.pk, "stolen")],
        also={"revoked_at": when},
    )
    rows = dict(ApiKey.objects.for_company(company).values_list("name", "revoked_at"))
    assert rows == {"first": when, "second": when, "k2": None}
    theirs.refresh_from_db()
    assert (theirs.name, theirs.revoked_at) == ("theirs", None)


def test_update_rows_writes_each_group_of_alike_rows_and_never_crosses_companies(
    company, other_company
):
    from companies.tenancy import tenant_update_rows

    ours = [api_key_create(company=company, name=f"k{i}").api_key for i in range(3)]
    theirs = api_key_create(company=other_company, name="theirs").api_key
    when = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    ours[0].name, ours[0].revoked_at = "first", when
    ours[1].name, ours[1].revoked_at = "second", None
    ours[2].name, ours[2].revoked_at = "third", when
    theirs.name, theirs.revoked_at = "stolen", when
    tenant_update_rows(
        ApiKey, company=company, rows=[*ours, theirs], shared=["revoked_at"], per_row="name"
    )
    rows = dict(ApiKey.objects.for_company(company).values_list("name", "revoked_at"))
    assert rows == {"first": when, "second": None, "third": when}
    theirs.refresh_from_db()
    assert (theirs.name, theirs.revoked_at) == ("theirs", None)
