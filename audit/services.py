"""Writes of the audit log. ``audit_record`` is the one public way in (other apps call it
inside the transaction of their change, so a rolled-back change leaves no entry)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models
from django.http import HttpRequest

from audit.context import AuditActor, client_ip, current_actor
from audit.models import AuditAction, AuditEntry
from companies import rls
from companies.models import Company, User

# Written in place of a secret's value: the log says it changed, never what it is.
SECRET_MARK = "•••"  # noqa: S105  (a placeholder, not a secret)


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The values of ``fields`` on ``instance`` (foreign keys by id), to diff later."""
    values: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        values[name] = getattr(instance, getattr(field, "attname", name))
    return values


def changes_between(
    before: Mapping[str, Any], after: Mapping[str, Any], *, secret: Iterable[str] = ()
) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields whose value differs; a secret field only
    says that it changed."""
    hidden = set(secret)
    changed: dict[str, list[Any]] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changed[name] = [SECRET_MARK, SECRET_MARK] if name in hidden else [old, new]
    return changed


def _target_fields(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    target_id = getattr(target, "public_id", None) or ""
    return target._meta.model_name or "", str(target_id), str(target)[:255]


def audit_record(
    *,
    company: Company,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_label: str = "",
    changes: Mapping[str, Any] | None = None,
    actor: AuditActor | None = None,
) -> AuditEntry:
    """Record one change of ``company``: ``action`` (an ``AuditAction``) on ``target``.

    The actor (member or API key, and the IP) comes from the current request unless given;
    outside a request it is the system. Call it inside the transaction that makes the change.
    ``target`` is named by its public id and its ``str()`` at this moment; pass no target
    (only a ``target_type``) when naming it would keep personal data (an erasure).
    """
    actor = actor or current_actor()
    kind, target_id, label = _target_fields(target)
    return AuditEntry.objects.create(
        company=company,
        action=action,
        actor_kind=actor.kind,
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        actor_label=actor.label[:255],
        ip=actor.ip,
        target_type=target_type or kind,
        target_id=target_id,
        target_label=(target_label or label)[:255],
        changes=dict(changes or {}),
    )


def _record_for_memberships(*, user: User, action: str, actor: AuditActor) -> int:
    """One entry in each company ``user`` belongs to (nothing for a user with none)."""
    from companies.models import Membership

    company_ids = list(Membership.objects.for_user(user).values_list("company_id", flat=True))
    # One statement per company, each as that company (row-level security; one shard each).
    for company_id in company_ids:
        with rls.scoped(rls.Scope(company_id=company_id)):
            AuditEntry.objects.create(
                company_id=company_id,
                action=action,
                actor_kind=actor.kind,
                actor_user=actor.user,
                actor_label=actor.label[:255],
                ip=actor.ip,
                target_type="user",
                target_label=actor.label[:255],
            )
    return len(company_ids)


def audit_sign_in(*, user: User, request: HttpRequest | None) -> int:
    """A sign-in, recorded in every company the person is a member of."""
    ip = client_ip(request) if request is not None else None
    return _record_for_memberships(
        user=user, action=AuditAction.SIGNED_IN, actor=AuditActor.for_user(user, ip=ip)
    )


def audit_sign_in_failed(*, email: str, request: HttpRequest | None) -> int:
    """A refused sign-in for ``email``: in each of its companies; an unknown address is
    nobody's business (and recording it would keep typed-in addresses)."""
    email = email.strip()
    if not email:
        return 0
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        return 0
    ip = client_ip(request) if request is not None else None
    return _record_for_memberships(
        user=user, action=AuditAction.SIGN_IN_FAILED, actor=AuditActor.for_user(user, ip=ip)
    )


def audit_download(
    *, company: Company, kind: str, file_name: str, filters: Mapping[str, str] | None = None
) -> AuditEntry:
    """An export downloaded: what (``kind``, e.g. ``responses``), its file name and the
    filters it was cut with. Recorded before the file streams."""
    changes: dict[str, Any] = {"file": [None, file_name]}
    if filters:
        changes["filters"] = [None, dict(filters)]
    return audit_record(
        company=company,
        action=AuditAction.EXPORT_DOWNLOADED,
        target_type=kind,
        target_label=file_name,
        changes=changes,
    )
