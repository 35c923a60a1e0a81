"""Writes for data subject rights: erasure of one person (art. 17) and the record of each
export or erasure.

Erasure removes or irreversibly anonymises everything ``privacy.selectors`` finds, each kind
of data in its own function below (age-based retention anonymises in bulk elsewhere; these
work per person). What stays, and why:

* an answer's score, survey, channel, language and time, with nothing linking it to anyone
  (no contact, invitation, comment, answers to extra questions, properties or browser key):
  the dashboards' counts, NPS and trends stay what they were (the rollups count per score;
  clearing the properties snapshot takes the answer out of property segments only);
* a suppression of one of their addresses, as a salted hash (``notifications.services.
  suppression_address_hash``): the company must still never message an address that
  unsubscribed or bounced, and the hash is all sends need to refuse it;
* a ``PersonalDataRequest`` saying who erased, when, and by which kind of identifier.
"""

from __future__ import annotations

import csv
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.core.files import File
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Cast

from audit.context import AuditActor, current_actor
from audit.models import AuditAction
from audit.services import audit_record
from companies.models import ApiKey, Company, User
from dashboards.services import rollup_fold
from delighted_compat.models import DelightedImport, DelightedImportStatus, DelightedResponse
from notifications.models import (
    Delivery,
    DeliveryStatus,
    OutboxMessage,
    Suppression,
)
from notifications.services import SUPPRESSION_HASH_PREFIX, suppression_address_hash
from notifications.webhooks_models import MessageStatus, WebhookMessage
from privacy.models import PersonalDataRequest, RequestKind
from privacy.selectors import (
    Person,
    deliveries_about,
    deliveries_of,
    invitations_of,
    person_export,
    responses_of,
    suppressions_of,
)
from responses.models import Followup, Response
from surveys.imports import ImportFileError, iter_file_rows
from surveys.models import AutopilotMember, Contact, ContactImport, ImportStatus
from widget.models import WidgetView

# Rows waiting for a worker, or in its hands: anonymised in place, never deleted under it.
_IN_FLIGHT = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
# How many identifying strings one webhook payload query looks for at once.
_TOKENS_PER_QUERY = 100


@dataclass(frozen=True)
class Actor:
    """Who asked: a member (web app) or an API key (``/api/v1/``, ``/v1/``)."""

    via: str
    user: User | None = None
    api_key: ApiKey | None = None


def personal_data_request_record(
    *, company: Company, kind: str, person: Person, actor: Actor, counts: dict[str, int]
) -> PersonalDataRequest:
    """The record of an export or erasure: who, when, what kind, how many rows; never the
    identifier or the data. The audit log gets the same in the same transaction: no target
    (naming the person would keep them), only the kind of identifier; the actor is the
    request's (member or key, and its IP)."""
    with transaction.atomic():
        audit_record(
            company=company,
            action=AuditAction.PERSON_ERASED
            if kind == RequestKind.ERASURE
            else AuditAction.PERSON_EXPORTED,
            target_type="person",
            changes={"identifier_kind": [None, person.identifier_kind]},
            actor=_audit_actor(actor),
        )
        return PersonalDataRequest.objects.create(
            company=company,
            kind=kind,
            identifier_kind=person.identifier_kind,
            via=actor.via,
            actor_user=actor.user,
            actor_api_key=actor.api_key,
            counts={k: int(v) for k, v in counts.items()},
        )


def _audit_actor(actor: Actor) -> AuditActor:
    """The audit log's actor is the one the record names (a service called outside a
    request still has one), with the request's IP when there is a request."""
    ip = current_actor().ip
    if actor.api_key is not None:
        return AuditActor.for_api_key(actor.api_key, ip=ip)
    if actor.user is not None:
        return AuditActor.for_user(actor.user, ip=ip)
    return current_actor()


def person_export_recorded(*, company: Company, person: Person, actor: Actor) -> dict[str, Any]:
    """The export (``privacy.selectors.person_export``), recorded."""
    data = person_export(company=company, person=person)
    counts = {key: len(value) for key, value in data.items() if isinstance(value, list)}
    personal_data_request_record(
        company=company, kind=RequestKind.EXPORT, person=person, actor=actor, counts=counts
    )
    return data


def person_erase(*, company: Company, person: Person, actor: Actor) -> PersonalDataRequest:
    """Erase everything the company holds about ``person``, in one transaction, and record it.

    Stored files (import uploads and their error reports) are rewritten after the database
    work has committed: a file cannot roll back, so it goes last.
    """
    with transaction.atomic():
        # Found before anything is unlinked: they are found through the links.
        tokens = _identifying_strings(company=company, person=person)
        delivery_ids = [
            *deliveries_of(company=company, person=person).values_list("pk", flat=True),
            *deliveries_about(company=company, person=person).values_list("pk", flat=True),
        ]
        counts: dict[str, int] = {}
        counts["responses"] = responses_anonymise(company=company, person=person)
        counts["webhook_messages"] = webhook_messages_erase(company=company, tokens=tokens)
        counts["deliveries"] = deliveries_erase(company=company, delivery_ids=delivery_ids)
        counts["suppressions"] = suppressions_hash(company=company, person=person)
        counts["contacts"] = contacts_erase(company=company, person=person)
        counts["import_rows"] = import_records_erase(company=company, person=person)
        outbox_erase(person=person)
        record = personal_data_request_record(
            company=company, kind=RequestKind.ERASURE, person=person, actor=actor, counts=counts
        )
    counts["stored_files"] = stored_files_erase(company=company, person=person)
    record.counts = counts
    record.save(update_fields=["counts"])
    # The rollup deltas of the anonymised answers carry their old properties snapshot until
    # the next fold: fold now rather than in a few seconds (another fold at work does it).
    rollup_fold()
    return record


def _identifying_strings(*, company: Company, person: Person) -> list[str]:
    """What names the person in free-form stored data (webhook payloads): addresses, external
    ids, contact and answer ids. Taken before anything is unlinked."""
    tokens = {address for _channel, address in person.addresses}
    tokens.update(person.external_ids)
    tokens.update(c.public_id for c in person.contacts)
    tokens.update(responses_of(company=company, person=person).values_list("public_id", flat=True))
    return sorted(t for t in tokens if t)


# --- One function per kind of data ------------------------------------------------------------


def responses_anonymise(*, company: Company, person: Person) -> int:
    """Their answers keep only what the dashboards count (score, survey, channel, language,
    time); their follow-up threads go, and what the Delighted import kept about them."""
    responses = responses_of(company=company, person=person)
    ids = list(responses.values_list("pk", flat=True))
    if not ids:
        return 0
    Followup.objects.for_company(company).filter(response_id__in=ids).delete()
    DelightedResponse.objects.for_company(company).filter(response_id__in=ids).update(
        # The Delighted id stays (it is Delighted's row id, not the person's): a re-run of the
        # same import must find the answer and not bring it back.
        person_id="",
        tags=[],
        notes=[],
        permalink="",
    )
    return (
        Response.objects.for_company(company)
        .filter(pk__in=ids)
        .update(
            contact=None,
            invitation=None,
            comment="",
            extra_answers={},
            contact_properties={},
            invitation_properties={},
            browser_key=None,
            # Nothing is owed any more about an answer nobody can be told about.
            owed_event="",
            owed_at=None,
        )
    )


def webhook_messages_erase(*, company: Company, tokens: list[str]) -> int:
    """Outbound webhook (and Slack) messages whose payload names the person, with their
    attempt logs; one in a worker's hands keeps its row but loses its payload."""
    if not tokens:
        return 0
    messages = WebhookMessage.objects.for_company(company).annotate(
        payload_text=Cast("payload", TextField())
    )
    ids: set[int] = set()
    for start in range(0, len(tokens), _TOKENS_PER_QUERY):
        query = Q()
        for token in tokens[start : start + _TOKENS_PER_QUERY]:
            # A whole JSON string, quotes included: a short external id ("42") must not
            # match every payload with a 42 somewhere in it.
            query |= Q(payload_text__icontains=f'"{token}"')
        ids.update(messages.filter(query).values_list("pk", flat=True))
    scoped = WebhookMessage.objects.for_company(company).filter(pk__in=ids)
    scoped.filter(status=MessageStatus.SENDING).update(payload={}, url="")
    scoped.exclude(status=MessageStatus.SENDING).delete()
    return len(ids)


def deliveries_erase(*, company: Company, delivery_ids: list[int]) -> int:
    """Ledger rows (and their provider events): those to the person, and the team's emails
    about their answers. A row not yet sent is failed and blanked, so that no worker sends
    it; one being sent is blanked in place."""
    scoped = Delivery.objects.for_company(company).filter(pk__in=delivery_ids)
    blank = {"to": "", "subject": "", "error": "", "metadata": {}, "provider_message_id": ""}
    scoped.filter(status=DeliveryStatus.QUEUED).update(status=DeliveryStatus.FAILED, **blank)
    scoped.filter(status=DeliveryStatus.SENDING).update(**blank)
    scoped.exclude(status__in=_IN_FLIGHT).delete()
    return len(set(delivery_ids))


def suppressions_hash(*, company: Company, person: Person) -> int:
    """Their suppressions keep stopping sends, as a hash of the address only."""
    changed = 0
    for suppression in suppressions_of(company=company, person=person):
        if suppression.address.startswith(SUPPRESSION_HASH_PREFIX):
            continue
        hashed = suppression_address_hash(
            company_id=company.pk, channel=suppression.channel, normalized=suppression.address
        )
        exists = (
            Suppression.objects.for_company(company)
            .filter(channel=suppression.channel, address=hashed)
            .exists()
        )
        if exists:
            suppression.delete()
        else:
            suppression.address = hashed
            suppression.detail = ""
            suppression.save(update_fields=["address", "detail"])
        changed += 1
    return changed


def contacts_erase(*, company: Company, person: Person) -> int:
    """The contacts themselves, with their invitations (and timelines), recurring-survey
    memberships and widget showings."""
    contact_ids = [c.pk for c in person.contacts]
    if not contact_ids:
        return 0
    invitations_of(company=company, person=person).delete()
    AutopilotMember.objects.for_company(company).filter(contact_id__in=contact_ids).delete()
    WidgetView.objects.for_company(company).filter(contact_id__in=contact_ids).delete()
    Contact.objects.for_company(company).filter(pk__in=contact_ids).delete()
    return len(contact_ids)


def outbox_erase(*, person: Person) -> int:
    """The embedded default's development outbox (no company: a local mail catcher)."""
    query = Q(pk__in=[])
    for _channel, address in person.addresses:
        query |= Q(to_text__icontains=address)
    found = OutboxMessage.objects.annotate(to_text=Cast("to", TextField())).filter(query)
    deleted, _by_model = OutboxMessage.objects.filter(
        pk__in=list(found.values_list("pk", flat=True))
    ).delete()
    return deleted


# --- Import files and their reports -----------------------------------------------------------


def _cell_matches(cell: Any, wanted: frozenset[str]) -> bool:
    if cell is None:
        return False
    text = str(cell).strip()
    # Error reports escape formula-like cells with a leading quote ("'+7701…").
    if text.startswith("'"):
        text = text[1:]
    if text.casefold() in wanted:
        return True
    digits = "".join(ch for ch in text if ch.isdigit())
    return bool(digits) and "+" + digits in wanted


def _wanted(person: Person) -> frozenset[str]:
    values = {address.casefold() for _channel, address in person.addresses}
    values.update(x.casefold() for x in person.external_ids)
    return frozenset(v for v in values if v)


def _json_scrub(value: Any, wanted: frozenset[str]) -> tuple[Any, int]:
    """``value`` with every list item or dict value that names the person dropped (an
    import's ``errors`` and ``samples``), and how many were."""
    if isinstance(value, list):
        kept = []
        dropped = 0
        for item in value:
            if _names(item, wanted):
                dropped += 1
            else:
                kept.append(item)
        return kept, dropped
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        dropped = 0
        for key, item in value.items():
            out[key], n = _json_scrub(item, wanted)
            dropped += n
        return out, dropped
    return value, 0


def _names(item: Any, wanted: frozenset[str]) -> bool:
    if isinstance(item, dict):
        return any(_names(v, wanted) for v in item.values())
    if isinstance(item, list):
        return any(_names(v, wanted) for v in item)
    if isinstance(item, str):
        folded = item.casefold()
        return _cell_matches(item, wanted) or any(w in folded for w in wanted if "@" in w)
    return False


def import_records_erase(*, company: Company, person: Person) -> int:
    """The first rejected rows and the sample values that imports keep in the database."""
    wanted = _wanted(person)
    if not wanted:
        return 0
    dropped = 0
    # company_id loaded: a row's save() names its company (companies/tenancy.py).
    for contact_import in ContactImport.objects.for_company(company).only(
        "pk", "company_id", "errors", "samples"
    ):
        errors, n_errors = _json_scrub(contact_import.errors, wanted)
        samples, n_samples = _json_scrub(contact_import.samples, wanted)
        if n_errors or n_samples:
            contact_import.errors, contact_import.samples = errors, samples
            contact_import.save(update_fields=["errors", "samples"])
            dropped += n_errors + n_samples
    for delighted_import in DelightedImport.objects.for_company(company).only(
        "pk", "company_id", "errors"
    ):
        errors, n_errors = _json_scrub(delighted_import.errors, wanted)
        if n_errors:
            delighted_import.errors = errors
            delighted_import.save(update_fields=["errors"])
            dropped += n_errors
    return dropped


def _stored_files(company: Company) -> Iterator[tuple[Any, FieldFile]]:
    """Every stored file of a finished import: (owner, file). Files of an import still
    at work are its input; they are left to it."""
    finished_contact = [ImportStatus.DONE, ImportStatus.FAILED]
    for contact_import in ContactImport.objects.for_company(company).filter(
        status__in=finished_contact
    ):
        if contact_import.file:
            yield contact_import, contact_import.file
        if contact_import.error_report:
            yield contact_import, contact_import.error_report
    finished_delighted = [DelightedImportStatus.DONE, DelightedImportStatus.FAILED]
    for delighted_import in DelightedImport.objects.for_company(company).filter(
        status__in=finished_delighted
    ):
        if delighted_import.file:
            yield delighted_import, delighted_import.file
        if delighted_import.error_report:
            yield delighted_import, delighted_import.error_report


def _rows(binary: IO[bytes], fmt: str) -> Iterable[list[Any]]:
    try:
        yield from iter_file_rows(binary, fmt)
    except (ImportFileError, ValueError, KeyError, zipfile.BadZipFile):
        # A file the import refused (malformed, too large): scanned as far as it reads.
        return


def stored_files_erase(*, company: Company, person: Person) -> int:
    """Rows naming the person, taken out of stored import files and error reports; a file
    with such rows is rewritten (as UTF-8 CSV) without them. Returns the rows taken out."""
    wanted = _wanted(person)
    if not wanted:
        return 0
    removed = 0
    for owner, field_file in list(_stored_files(company)):
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="") as kept:
            writer = csv.writer(kept)
            dropped = 0
            try:
                binary = field_file.open("rb")
            except FileNotFoundError:
                continue
            with binary:
                # By content: a workbook is a zip; an upload's stored name may say nothing.
                fmt = "xlsx" if binary.read(2) == b"PK" else "csv"
                binary.seek(0)
                for row in _rows(binary, fmt):
                    if any(_cell_matches(cell, wanted) for cell in row):
                        dropped += 1
                    else:
                        writer.writerow(["" if cell is None else cell for cell in row])
            if not dropped:
                continue
            removed += dropped
            kept.seek(0)
            old_name = field_file.name or ""
            with tempfile.TemporaryFile() as out:
                out.write("\ufeff".encode())
                while block := kept.read(64 * 1024):
                    out.write(block.encode("utf-8"))
                out.seek(0)
                field_file.storage.delete(old_name)
                field_file.save("rewritten.csv", File(out), save=False)
            owner.save(update_fields=[field_file.field.name])
    return removed
