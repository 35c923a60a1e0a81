"""The tenancy choke point at the data layer.

Every tenant-owned model uses ``TenantManager`` as its default manager. Its querysets refuse
to run until they are scoped to one company, so an unscoped query fails loudly instead of
leaking another company's rows:

* ``Model.objects.for_company(company)``: the normal way in;
* ``.filter(company=...)`` / ``.filter(company_id=...)``: also scoped (Django's own unique
  checks and related managers build queries this way);
* ``Model.objects.unscoped(reason=...)``: the explicit escape for system jobs (API key lookup,
  Celery sweeps across all companies). The reason is for the reader of the code. Such a
  query also runs as a system job for PostgreSQL's row-level security (``companies.rls``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import MethodType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from django.db import models, router
from django.db.models.deletion import Collector
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ForwardOneToOneDescriptor,
)
from django.db.models.lookups import Exact
from django.db.models.signals import class_prepared
from django.db.models.sql.constants import GET_ITERATOR_CHUNK_SIZE
from django.db.models.sql.where import AND, WhereNode

from companies import rls

if TYPE_CHECKING:
    from companies.models import Company

_M = TypeVar("_M", bound=models.Model)

SCOPING_LOOKUPS = frozenset({"company", "company_id", "company__pk", "company__id"})


class UnscopedTenantQuery(RuntimeError):
    """A query on a tenant-owned model was about to run without a company scope."""


class TenantQuerySet(models.QuerySet[_M]):
    _tenant_scoped: bool = False
    # Set by ``unscoped``: the query runs as a system job for row-level security, and its
    # statements are on purpose not restricted to one company (companies/system_jobs.py,
    # docs/scaling.md).
    _unscoped_reason: str | None = None

    def for_company(self, company: Company) -> Self:
        return self.filter(company=company)

    def unscoped(self, *, reason: str) -> Self:
        """Run across companies. Only for system jobs; say why in ``reason``."""
        assert reason, "say why this query may cross companies"
        clone = self._chain()  # type: ignore[attr-defined]
        clone._tenant_scoped = True
        clone._unscoped_reason = reason
        return clone

    # -- bookkeeping ---------------------------------------------------------------------------

    def _clone(self) -> Self:
        clone = super()._clone()  # type: ignore[misc]
        clone._tenant_scoped = self._tenant_scoped
        clone._unscoped_reason = self._unscoped_reason
        return clone

    def _filter_or_exclude(self, negate: bool, args: Any, kwargs: Any) -> Self:
        clone = super()._filter_or_exclude(negate, args, kwargs)  # type: ignore[misc]
        if not negate and SCOPING_LOOKUPS.intersection(kwargs):
            clone._tenant_scoped = True
        return clone

    def _check_scoped(self) -> None:
        if not self._tenant_scoped:
            raise UnscopedTenantQuery(
                f"{self.model.__name__} is tenant-owned: use .for_company(company) "
                "or, for a system job, .unscoped(reason=...)"
            )

    def _database_scope(self) -> AbstractContextManager[None]:
        if self._unscoped_reason is None:
            return nullcontext()
        return rls.system(reason=self._unscoped_reason, using=self.db)

    # -- every way a queryset reaches the database ---------------------------------------------

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._check_scoped()
            with self._database_scope():
                super()._fetch_all()
        super()._fetch_all()

    def count(self) -> int:
        self._check_scoped()
        with self._database_scope():
            return super().count()

    def exists(self) -> bool:
        self._check_scoped()
        with self._database_scope():
            return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._check_scoped()
        with self._database_scope():
            return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._check_scoped()
        with self._database_scope():
            return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        """Django's ``QuerySet.delete`` with a ``TenantCollector``: what the deletion
        cascades to is found and deleted within the rows' company."""
        self._check_scoped()
        if self.query.is_sliced:
            raise TypeError("Cannot use 'limit' or 'offset' with delete().")
        if self.query.distinct_fields or self._fields is not None:  # type: ignore[attr-defined]
            raise TypeError("Cannot call delete() after .distinct(*fields) or .values().")
        doomed = self._chain()  # type: ignore[attr-defined]
        doomed._for_write = True
        doomed.query.select_for_update = False
        doomed.query.select_related = False
        doomed.query.clear_ordering(force=True)
        with self._database_scope():
            collector = TenantCollector(using=doomed.db, origin=self)
            collector.collect(doomed)
            deleted = collector.delete()
        self._result_cache = None
        return deleted

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def iterator(self, chunk_size: int | None = None) -> Iterator[Any]:
        self._check_scoped()
        rows = super().iterator(chunk_size=chunk_size)
        if self._unscoped_reason is None:
            return rows
        return self._iterate_as_system(rows)

    def _iterate_as_system(self, rows: Iterator[Any]) -> Iterator[Any]:
        # Rows are fetched in chunks as the caller iterates: the whole iteration is the job.
        with self._database_scope():
            yield from rows

    def in_bulk(self, *args: Any, **kwargs: Any) -> Any:
        self._check_scoped()
        with self._database_scope():
            return super().in_bulk(*args, **kwargs)

    def explain(self, *args: Any, **kwargs: Any) -> str:
        self._check_scoped()
        with self._database_scope():
            return super().explain(*args, **kwargs)


class TenantManager(models.Manager[_M]):
    """Default manager of tenant-owned models: fail-closed, see the module docstring."""

    _queryset_class = TenantQuerySet

    def get_queryset(self) -> TenantQuerySet[_M]:
        qs: TenantQuerySet[_M] = self._queryset_class(
            self.model,
            using=self._db,
            hints=self._hints,  # type: ignore[attr-defined]
        )
        # A related manager (company.memberships, survey.invitations) is already bound to an
        # object that was itself reached through a scoped query.
        if getattr(self, "instance", None) is not None:
            qs._tenant_scoped = True
        return qs

    def for_company(self, company: Company) -> TenantQuerySet[_M]:
        return self.get_queryset().for_company(company)

    def unscoped(self, *, reason: str) -> TenantQuerySet[_M]:
        return self.get_queryset().unscoped(reason=reason)


class TenantModel(models.Model):
    """Base of every tenant-owned table: a non-null company and a fail-closed manager."""

    company = models.ForeignKey("companies.Company", on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True

    # Django's own statements for one row (``save()``'s UPDATE, ``refresh_from_db()`` and the
    # loading of a deferred field) select it by primary key alone; they name its company too,
    # so that each routes to one shard of a cluster distributed by company_id (docs/scaling.md).

    def _do_update(self, base_qs: Any, using: Any, pk_val: Any, *args: Any) -> Any:
        if "company_id" in self.__dict__:
            base_qs = base_qs.filter(company_id=self.company_id)
        return super()._do_update(base_qs, using, pk_val, *args)

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Django's ``Model.delete`` with a ``TenantCollector`` (see there)."""
        if self.pk is None:
            raise ValueError(f"{type(self).__name__} object can't be deleted: its id is None.")
        using = using or router.db_for_write(type(self), instance=self)
        collector = TenantCollector(using=using, origin=self)
        collector.collect([self], keep_parents=keep_parents)
        return collector.delete()

    delete.alters_data = True  # type: ignore[attr-defined]

    def refresh_from_db(
        self, using: str | None = None, fields: Any = None, from_queryset: Any = None
    ) -> None:
        # A deferred company_id is loaded the way Django does it (by primary key alone).
        if from_queryset is None and "company_id" in self.__dict__:
            manager = type(self)._base_manager.db_manager(using, hints={"instance": self})
            from_queryset = manager.filter(company_id=self.company_id)
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)


class TenantCollector(Collector):
    """Django's deletion collector, each of whose statements names the company.

    Django finds what a deletion cascades to by foreign key alone (``WHERE contact_id IN
    (…)``) and deletes collected rows by primary key alone (``WHERE id IN (…)``): statements
    that would go to every shard of a cluster distributed by company_id (docs/scaling.md).
    Here both also say ``company_id = <the company>``: the companies of the tenant rows asked
    to be deleted (``TenantModel.delete``, ``TenantQuerySet.delete``). A tenant row only
    points at rows of its own company, so the rows found and deleted are the same. A
    deletion that starts outside the tenant tables (a user, a company) uses Django's own
    collector.
    """

    def __init__(self, using: str, origin: Any = None) -> None:
        super().__init__(using, origin=origin)
        self.companies: set[int] = set()
        self._deleted_by_company: list[tuple[type[models.Model], list[models.Model]]] = []

    def collect(self, objs: Any, source: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        # What was asked to be deleted (not what it cascades to), unless Django deletes it
        # as a queryset without reading it. Else Django reads the rows anyway (``add``).
        asked = source is None
        if asked and not (isinstance(objs, models.QuerySet) and self.can_fast_delete(objs)):
            self.companies.update(obj.company_id for obj in objs)
        super().collect(objs, source=source, **kwargs)

    def related_objects(self, related_model: Any, related_fields: Any, objs: Any) -> Any:
        found = super().related_objects(related_model, related_fields, objs)
        return self._within_companies(found)

    def _within_companies(self, queryset: Any) -> Any:
        if not self.companies or not _has_company(queryset.model):
            return queryset
        if len(self.companies) == 1:
            return queryset.filter(company_id=next(iter(self.companies)))
        return queryset.filter(company_id__in=sorted(self.companies))

    def delete(self) -> tuple[int, dict[str, int]]:
        # Collected tenant rows (Django deletes them by id) are deleted as the fast deletes
        # are, by a queryset: their ids and their company. Unless someone listens to their
        # deletion signals, which are sent for the collected rows only.
        if self.companies:
            for model in [m for m in self.data if _has_company(m)]:
                if self._has_signal_listeners(model):  # type: ignore[attr-defined]
                    continue
                rows = list(self.data.pop(model))
                ids = sorted(row.pk for row in rows)
                for start in range(0, len(ids), GET_ITERATOR_CHUNK_SIZE):
                    batch = ids[start : start + GET_ITERATOR_CHUNK_SIZE]
                    found = model._base_manager.using(self.using).filter(pk__in=batch)
                    self.fast_deletes.append(self._within_companies(found))
                self._deleted_by_company.append((model, rows))
        # Field updates (SET_NULL) of collected rows, by id alone in Django: by queryset too.
        for key, batches in self.field_updates.items():
            self.field_updates[key] = [self._as_queryset(batch) for batch in batches]
        deleted = super().delete()
        for model, rows in self._deleted_by_company:
            for row in rows:
                setattr(row, model._meta.pk.attname, None)  # as Django does for its own
        return deleted

    def _as_queryset(self, batch: Any) -> Any:
        if isinstance(batch, models.QuerySet) and batch._result_cache is None:
            return batch
        rows = list(batch)
        if not rows or not self.companies or not _has_company(type(rows[0])):
            return batch
        found = (
            type(rows[0])
            ._base_manager.using(self.using)
            .filter(pk__in=sorted({row.pk for row in rows}))
        )
        return self._within_companies(found)


def tenant_update_per_row(
    model: type[models.Model],
    *,
    company: Company,
    field_name: str,
    values: list[tuple[int, Any]],
    also: Mapping[str, Any] | None = None,
) -> None:
    """Set ``model.<field_name>`` to a different value per row in one statement (PostgreSQL),
    and the fields of ``also`` to the same value on each of those rows.

    ``bulk_update`` builds a CASE/WHEN per row, which dominated the send path; this is one
    ``UPDATE … FROM (VALUES …)`` per 1,000 rows, always restricted to ``company``'s rows.
    Like ``bulk_update`` and ``.update()``, it does not touch ``auto_now`` fields.
    """
    from django.db import connection

    if not values:
        return
    meta = model._meta
    field, tenant, pk = meta.get_field(field_name), meta.get_field("company"), meta.pk
    assert isinstance(field, models.Field)
    assert isinstance(tenant, models.Field)
    assert pk is not None
    constant: list[tuple[models.Field[Any, Any], Any]] = []
    for name, value in (also or {}).items():
        other = meta.get_field(name)
        assert isinstance(other, models.Field)
        constant.append((other, other.get_db_prep_save(value, connection)))
    quote = connection.ops.quote_name
    assignments = ", ".join(
        [f"{quote(field.column)} = v.value", *(f"{quote(f.column)} = %s" for f, _ in constant)]
    )
    # Casts on the VALUES rows: without them PostgreSQL types every literal as text.
    row_sql = f"(%s::{pk.db_type(connection)}, %s::{field.db_type(connection)})"
    for start in range(0, len(values), 1000):
        chunk = values[start : start + 1000]
        params: list[Any] = [value for _field, value in constant]
        for pk_value, value in chunk:
            params += [pk_value, field.get_db_prep_value(value, connection)]
        params.append(company.pk)
        # Only quoted model metadata is formatted in: every value is a parameter.
        sql = (
            f"UPDATE {quote(meta.db_table)} AS t SET {assignments}"  # noqa: S608
            f" FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v(id, value)"
            f" WHERE t.{quote(pk.column)} = v.id"
            f" AND t.{quote(tenant.column)} = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def tenant_update_rows(
    model: type[models.Model],
    *,
    company: Company,
    rows: Sequence[models.Model],
    shared: Sequence[str],
    per_row: str,
) -> None:
    """Write ``rows``' fields as they are in memory on PostgreSQL: ``per_row`` differs from
    row to row, the ``shared`` fields are usually alike (a batch's status and times).

    One ``tenant_update_per_row`` per group of rows sharing the ``shared`` values (usually one
    group), each row's ``per_row`` and the group's values in the same statement: every index
    of the table takes one new entry per row, not one per field written.
    """
    from django.db import transaction

    groups: dict[tuple[Any, ...], list[models.Model]] = {}
    for row in rows:
        groups.setdefault(tuple(getattr(row, name) for name in shared), []).append(row)
    attname = model._meta.get_field(per_row).attname  # type: ignore[union-attr]
    with transaction.atomic(savepoint=False):
        for values, group in groups.items():
            tenant_update_per_row(
                model,
                company=company,
                field_name=per_row,
                values=[(row.pk, getattr(row, attname)) for row in group],
                also=dict(zip(shared, values, strict=True)),
            )


# -- Foreign keys between tenant rows -------------------------------------------------------


class _SameCompanyLoad:
    """A tenant row's foreign key to another tenant row, loaded lazily (``response.survey``)
    with the company named too (``WHERE id = %s AND company_id = %s``), where Django selects
    by primary key alone: one shard (docs/scaling.md), and row-level security's index of
    choice. A tenant row only points at rows of its own company, so the row is the same.
    A key to a table without a company (``company`` itself, users) loads as Django does."""

    field: Any

    def get_object(self, instance: models.Model) -> Any:
        company_id = instance.__dict__.get("company_id")
        if company_id is None or not _has_company(self.field.related_model):
            return super().get_object(instance)  # type: ignore[misc]
        queryset = self.get_queryset(instance=instance).filter(company_id=company_id)  # type: ignore[attr-defined]
        return queryset.get(self.field.get_reverse_related_filter(instance))


class _TenantForwardManyToOne(_SameCompanyLoad, ForwardManyToOneDescriptor):
    pass


class _TenantForwardOneToOne(_SameCompanyLoad, ForwardOneToOneDescriptor):
    pass


def _has_company(model: Any) -> bool:
    return isinstance(model, type) and issubclass(model, TenantModel)


def _same_company_join(field: Any, alias: str | None, related_alias: str | None) -> Any:
    """A join along a foreign key between two tenant tables also equates their company_id
    (``JOIN surveys_survey ON (… .survey_id = surveys_survey.id AND (surveys_survey.company_id
    = … .company_id))``), in both directions: the ``company_id = %s`` of one table then
    restricts the other too, and the statement routes to one shard. The rows are the same
    (a tenant row only points at rows of its own company). Nothing where Django has only
    one side of the join (a subquery's trimmed start)."""
    if alias is None or related_alias is None or not _has_company(field.related_model):
        return None
    target = field.related_model._meta.get_field("company")
    source = field.model._meta.get_field("company")
    same_company: Any = Exact(target.get_col(alias), source.get_col(related_alias))
    return WhereNode([same_company], connector=AND)


def _same_company_foreign_keys(sender: type[models.Model], **kwargs: Any) -> None:
    """Give every foreign key of a tenant model the descriptor and the join condition above
    (``class_prepared``: after Django has set its own descriptor on the class)."""
    if not issubclass(sender, TenantModel) or sender._meta.abstract:
        return
    for field in sender._meta.local_fields:
        if not (field.many_to_one or field.one_to_one) or field.name == "company":
            continue
        field.get_extra_restriction = MethodType(_same_company_join, field)  # type: ignore[attr-defined]
        if isinstance(field, models.OneToOneField):
            setattr(sender, field.name, _TenantForwardOneToOne(field))
        else:
            setattr(sender, field.name, _TenantForwardManyToOne(field))


class_prepared.connect(_same_company_foreign_keys)
