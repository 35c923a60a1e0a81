"""Import of Delighted's CSV exports: survey responses, people, unsubscribes and bounces.

Delighted never published the exact column names of its exports, so headers are matched by
meaning (case, spaces, dashes and dots do not matter) against the names its API and its web
exports used (``Response ID``/``id``, ``Score``, ``Comment``, ``Email``/``person_email``,
``Created At``/``Response date``, ``Tags``, ``Notes``, ``Unsubscribed At``, …); a
``Property: Plan`` / ``person_properties.plan`` column is the property ``Plan`` / ``plan``,
and any other column becomes a property named after its header. Which file is which is read
from its headers (a score: responses; an unsubscribe or bounce time: those; an address
alone: people); the web app lets the user correct both before anything is written.

How a file goes (the contact import's pattern, ``surveys/imports.py``):

1. ``delighted_import_create`` stores the upload and reads only its header row;
2. ``delighted_import_start`` fixes kind and mapping and wakes the Celery task
   ``delighted_compat.import_file`` (the row in state ``running`` is the durable intent; the
   periodic ``delighted_compat.imports_rewake`` wakes one whose message was lost);
3. ``delighted_import_run`` claims it, reads the whole file once (an unreadable or malformed
   file fails here and lands nothing), then again in chunks of ``CHUNK_SIZE`` rows, each
   written in one transaction with a constant number of queries.

Rows: a bad row (no score, a score outside 0–10, an unreadable time, a bad address) is
skipped and reported (line, column, reason) in ``errors`` and in the downloadable CSV report;
the good rows land. Idempotent: an answer is keyed by Delighted's response id (or, without
that column, a hash of its person, time and score), a contact by email (else phone), a
suppression by address; what is already there is counted as unchanged and not written again
(except an answer that a later export shows edited: newer ``updated_at``, other score or
comment).

Times: integer Unix seconds or ISO 8601; a time without an offset is read in the company's
time zone. Answers keep their original times, so the rollup triggers put them in the right
day of the company's time zone like any other answer (no webhook, alert or follow-up is owed
by history). Imported unsubscribes and bounces are history too: no ``address_suppressed``
signal (no ``contact.unsubscribed`` webhook) goes out for them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record
from companies.models import Company, User
from companies.spreadsheets import SpooledCsvReport
from companies.wake import wake
from delighted_compat.api.services import default_survey_ensure
from delighted_compat.models import (
    DelightedImport,
    DelightedImportStatus,
    DelightedResponse,
    ExportKind,
)
from notifications.models import Channel, Suppression, SuppressionReason
from notifications.services import normalize_address, suppression_address_hash
from responses.models import Response, ResponseChannel, category_of
from surveys.imports import (
    ImportFileError,
    file_format,
    iter_file_rows,
    read_head,
    read_headers,
)
from surveys.models import Contact, Survey
from surveys.services.contacts import (
    contact_phone_region,
    merge_properties,
    normalize_email,
    normalize_language,
    normalize_phone,
    normalize_property,
)

logger = logging.getLogger(__name__)

IMPORT_TASK = "delighted_compat.import_file"
CHUNK_SIZE = 1000
ERRORS_KEPT = 100
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
IGNORE = "ignore"
PROPERTY_PREFIX = "property:"
PROPERTIES = "properties"  # a column of JSON or name=value pairs

# Targets per kind, and the header names (normalised by ``header_key``) that mean them.
_ALIASES: dict[str, set[str]] = {
    "response_id": {"response_id", "survey_response_id", "id", "response"},
    "score": {"score", "nps_score", "rating", "nps"},
    "comment": {"comment", "comments", "feedback", "response_comment"},
    "created_at": {
        "created_at",
        "created",
        "response_date",
        "responded_at",
        "response_time",
        "response_created_at",
        "date",
        "timestamp",
        "submitted_at",
        "answered_at",
    },
    "updated_at": {"updated_at", "updated", "response_updated_at", "last_updated"},
    # "id" means the response in an answers file (response_id comes first), else the person.
    "person_id": {"person_id", "person", "respondent_id", "people_id", "id"},
    "email": {"email", "person_email", "email_address", "respondent_email", "e_mail"},
    "phone": {"phone", "phone_number", "person_phone_number", "person_phone", "mobile"},
    "name": {"name", "person_name", "respondent_name", "full_name"},
    "tags": {"tags", "tag", "response_tags"},
    "notes": {"notes", "note", "response_notes"},
    "permalink": {"permalink", "response_permalink", "response_link", "link"},
    "channel": {"channel", "platform", "survey_platform"},
    "language": {"language", "locale", "lang"},
    "survey_type": {"survey_type"},
    PROPERTIES: {"properties", "person_properties", "custom_properties"},
    "unsubscribed_at": {"unsubscribed_at", "unsubscribed", "unsubscribe_date", "unsubscribed_on"},
    "bounced_at": {"bounced_at", "bounced", "bounce_date", "bounced_on"},
    "last_sent_at": {"last_sent_at", "last_survey_sent_at", "last_sent", "survey_sent_at"},
}
TARGETS: dict[str, tuple[str, ...]] = {
    ExportKind.RESPONSES: (
        "response_id",
        "score",
        "comment",
        "created_at",
        "updated_at",
        "person_id",
        "email",
        "phone",
        "name",
        "tags",
        "notes",
        "permalink",
        "channel",
        "language",
        "survey_type",
        PROPERTIES,
    ),
    ExportKind.PEOPLE: (
        "person_id",
        "email",
        "phone",
        "name",
        "created_at",
        "last_sent_at",
        PROPERTIES,
    ),
    ExportKind.UNSUBSCRIBES: ("person_id", "email", "phone", "name", "unsubscribed_at"),
    ExportKind.BOUNCES: ("person_id", "email", "phone", "name", "bounced_at"),
}
# Columns a file of that kind cannot do without (a file-level error lands nothing).
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    ExportKind.RESPONSES: (("score",), ("created_at",)),
    ExportKind.PEOPLE: (("email", "phone"),),
    ExportKind.UNSUBSCRIBES: (("email", "phone"),),
    ExportKind.BOUNCES: (("email", "phone"),),
}
# People before answers (their properties are the latest), suppressions last.
KIND_ORDER = (ExportKind.PEOPLE, ExportKind.RESPONSES, ExportKind.UNSUBSCRIBES, ExportKind.BOUNCES)
_PROPERTY_HEADER = re.compile(
    r"^\s*(?:person[ _]?propert(?:y|ies)|propert(?:y|ies)|custom[ _]?propert(?:y|ies))"
    r"\s*(?::|\.|\[|\s-\s)\s*(?P<key>.+?)\]?\s*$",
    re.IGNORECASE,
)


def header_key(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").replace(".", " ").split())


def _target_of(header: str, kind: str) -> str | None:
    """The target a header means in a file of ``kind`` (None: not recognised)."""
    match = _PROPERTY_HEADER.match(header)
    if match and match.group("key").strip():
        return PROPERTY_PREFIX + match.group("key").strip()[:64]
    key = header_key(header)
    allowed = TARGETS.get(kind) or tuple(_ALIASES)
    for target in allowed:
        if key in _ALIASES[target]:
            return target
    if kind and key in {k for aliases in _ALIASES.values() for k in aliases}:
        return IGNORE  # a Delighted column that has no meaning in this kind of file
    return None


def detect_kind(headers: Iterable[str]) -> str:
    """The kind of export by its headers; "" when they do not tell."""
    targets = {_target_of(h, "") for h in headers if h}
    if "score" in targets:
        return ExportKind.RESPONSES
    if "unsubscribed_at" in targets:
        return ExportKind.UNSUBSCRIBES
    if "bounced_at" in targets:
        return ExportKind.BOUNCES
    if targets & {"email", "phone"}:
        return ExportKind.PEOPLE
    return ""


def suggest_mapping(headers: Iterable[str], kind: str) -> tuple[dict[str, str], list[str]]:
    """A target for every header, and the headers that were not recognised (they become
    properties named after the header unless the user says otherwise)."""
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    used: set[str] = set()
    for header in headers:
        if not header:
            continue
        target = _target_of(header, kind)
        if (
            target in used
            and target not in (IGNORE, None)
            and not target.startswith(PROPERTY_PREFIX)
        ):
            target = IGNORE  # the first column of a meaning wins ("Created At" vs "Date")
        if target is None:
            unknown.append(header)
            target = PROPERTY_PREFIX + header.strip()[:64]
        used.add(target)
        mapping[header] = target
    return mapping, unknown


def validate(kind: str, headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """The complete mapping for ``kind``; raises ``ValidationError`` (a file-level error)."""
    if kind not in TARGETS:
        raise ValidationError(
            _("Say what this file holds: survey responses, people, unsubscribes or bounces.")
        )
    suggested, _unknown = suggest_mapping(headers, kind)
    final: dict[str, str] = {}
    seen: set[str] = set()
    for header in headers:
        if not header:
            continue
        target = mapping.get(header, suggested[header])
        if target == "property":
            target = PROPERTY_PREFIX + header.strip()[:64]
        if target not in (IGNORE, *TARGETS[kind]) and not (
            target.startswith(PROPERTY_PREFIX) and target[len(PROPERTY_PREFIX) :].strip()
        ):
            raise ValidationError(
                _("“%(target)s” is not a column of this kind of file.") % {"target": target}
            )
        if target in TARGETS[kind] and target != PROPERTIES:
            if target in seen:
                raise ValidationError(
                    _("Two columns are imported as “%(target)s”.") % {"target": target}
                )
            seen.add(target)
        final[header] = target
    targets = set(final.values())
    for needed in REQUIRED[kind]:
        if not targets & set(needed):
            raise ValidationError(
                _("This file has no column for %(what)s.") % {"what": " / ".join(needed)}
            )
    return final


# --- Reading cells ------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


_US_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)


def parse_time(value: Any, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """Unix seconds, ISO 8601 (``Z``, ``+03:00``, `` -0800``, `` UTC``) or a spreadsheet's
    date; a time without an offset is in ``zone``. Raises ``ValueError``."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = _text(value)
        if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
            return dt.datetime.fromtimestamp(float(text), tz=dt.UTC)
        text = re.sub(r"\s*(UTC|GMT)$", "+00:00", text)
        text = re.sub(r"\s+([+-]\d{2}:?\d{2})$", r"\1", text)
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            for fmt in _US_FORMATS:
                try:
                    moment = dt.datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
            else:
                raise
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def _score(value: Any) -> int:
    text = _text(value)
    number = float(text)  # ValueError for text
    if not number.is_integer() or not 0 <= number <= 10:
        raise ValueError(text)
    return int(number)


def _list(value: Any) -> list[str]:
    """Tags: a JSON list, or text separated by commas (semicolons when it has any)."""
    text = _text(value)
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(i).strip() for i in items if str(i).strip()]
    parts = text.split(";") if ";" in text else text.split(",")
    seen: list[str] = []
    for part in (p.strip() for p in parts):
        if part and part not in seen:
            seen.append(part)
    return seen


def _notes(value: Any) -> list[dict[str, str]]:
    """Notes: a JSON list (of texts or ``{"text"|"body": …}`` objects), else the cell is one."""
    text = _text(value)
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            notes = []
            for item in items:
                if isinstance(item, dict):
                    body = str(item.get("text") or item.get("body") or "").strip()
                    note = {k: str(v) for k, v in item.items() if v is not None}
                    note["text"] = body
                    notes.append(note)
                elif str(item).strip():
                    notes.append({"text": str(item).strip()})
            return notes
    return [{"text": text}]


def _properties_cell(value: Any) -> dict[str, Any]:
    """A properties column: a JSON object, or ``name=value`` pairs (lines or semicolons)."""
    text = _text(value)
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(_("Not a JSON object.")) from exc
        if not isinstance(data, dict):
            raise ValueError(_("Not a JSON object."))
        return {
            str(k): v if isinstance(v, str | int | float | bool) else json.dumps(v)
            for k, v in data.items()
            if v is not None
        }
    pairs: dict[str, Any] = {}
    for part in re.split(r"[;\n]", text):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(_("Write properties as name=value pairs."))
        pairs[key.strip()] = val.strip()
    return pairs


# --- Rows ---------------------------------------------------------------------------------------


class RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass
class Row:
    line: int
    cells: list[Any]
    values: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


class _Parser:
    def __init__(self, company: Company, imp: DelightedImport) -> None:
        self.kind = imp.kind
        self.zone = _zone(company)
        self.region = contact_phone_region(company=company)
        # (index, header, target)
        self.columns = [(i, h, imp.mapping.get(h, IGNORE)) for i, h in enumerate(imp.headers) if h]

    def parse(self, line: int, cells: list[Any]) -> Row:  # noqa: PLR0912 (one branch per target)
        row = Row(line=line, cells=cells)
        values = row.values
        for index, header, target in self.columns:
            if target == IGNORE:
                continue
            raw = cells[index] if index < len(cells) else None
            text = _text(raw)
            if target.startswith(PROPERTY_PREFIX):
                if text:
                    self._property(row, header, target[len(PROPERTY_PREFIX) :], text)
                continue
            if not text:
                continue
            try:
                if target in ("created_at", "updated_at", "unsubscribed_at", "bounced_at"):
                    values[target] = parse_time(raw, self.zone)
                elif target == "last_sent_at":
                    values[target] = parse_time(raw, self.zone).isoformat()
                elif target == "score":
                    values[target] = _score(raw)
                elif target == "email":
                    values[target] = normalize_email(text)
                elif target == "phone":
                    values[target] = normalize_phone(text, region=self.region)
                elif target == "tags":
                    values[target] = _list(raw)
                elif target == "notes":
                    values[target] = _notes(raw)
                elif target == "language":
                    try:
                        values[target] = normalize_language(text)
                    except ValidationError:  # a language we do not survey in: kept, as a property
                        self._property(row, header, "language", text)
                elif target == PROPERTIES:
                    for key, value in _properties_cell(raw).items():
                        self._property(row, header, key, value)
                else:
                    values[target] = text
            except (ValueError, ValidationError) as exc:
                raise RowError(header, self._reason(target, text, exc)) from exc
        self._check(row)
        return row

    def _property(self, row: Row, header: str, key: str, value: Any) -> None:
        try:
            name, clean = normalize_property(key, value)
        except ValidationError as exc:
            raise RowError(header, "; ".join(exc.messages)) from exc
        row.properties[name] = clean

    def _reason(self, target: str, text: str, exc: Exception) -> str:
        if target == "score":
            return _("The score must be a whole number from 0 to 10, not “%(value)s”.") % {
                "value": text[:40]
            }
        if target.endswith("_at"):
            return _("“%(value)s” is not a date and time.") % {"value": text[:40]}
        if isinstance(exc, ValidationError):
            return "; ".join(exc.messages)
        return str(exc) or _("Not a valid value.")

    def _check(self, row: Row) -> None:
        values = row.values
        if self.kind == ExportKind.RESPONSES:
            if "score" not in values:
                raise RowError(self._header("score"), _("The score is missing."))
            if "created_at" not in values:
                raise RowError(self._header("created_at"), _("The response time is missing."))
            kind = str(values.get("survey_type", "nps")).strip().lower()
            if kind not in ("nps", "enps"):
                # A CSAT 1–5 or CES 1–7 score counted as NPS would distort every figure.
                raise RowError(
                    self._header("survey_type"),
                    _("Only NPS answers can be imported, not “%(kind)s”.") % {"kind": kind[:20]},
                )
        elif "email" not in values and "phone" not in values:
            raise RowError(
                self._header("email"),
                _("The row has neither an email address nor a phone number."),
            )

    def _header(self, target: str) -> str:
        return next((h for _i, h, t in self.columns if t == target), target)


def _zone(company: Company) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(company.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


# --- Writing chunks -----------------------------------------------------------------------------


@dataclass
class Counts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0


def _contact_key(row: Row) -> tuple[str, str] | None:
    if "email" in row.values:
        return ("email", row.values["email"])
    if "phone" in row.values:
        return ("phone", row.values["phone"])
    return None


def _contact_apply(contact: Contact, row: Row, *, authority: bool) -> bool:
    """Row over an existing contact; whether anything changed. ``authority`` (a people
    file): its name and properties replace ours; an answer's (a snapshot of its time) only
    fill what is blank, so the result does not depend on the order of the files."""
    before = (contact.name, contact.phone, contact.properties)
    name = row.values.get("name", "")[:200]
    if name and (authority or not contact.name):
        contact.name = name
    if authority and contact.email and row.values.get("phone") and not contact.phone:
        contact.phone = row.values["phone"]
    changes = row.properties
    if not authority:
        changes = {k: v for k, v in changes.items() if k not in (contact.properties or {})}
    contact.properties = merge_properties(contact.properties, changes)
    return (contact.name, contact.phone, contact.properties) != before


def _contacts_upsert(
    *, company: Company, rows: list[Row], authority: bool
) -> tuple[dict[int, Contact | None], int, int]:
    """The contact of each row (by email, else phone; None when it has neither), created or
    updated in bulk: two queries and two writes per chunk. Returns row index → contact, and
    how many contacts were created and updated."""
    emails = {r.values["email"] for r in rows if "email" in r.values}
    phones = {r.values["phone"] for r in rows if "email" not in r.values and "phone" in r.values}
    found: dict[tuple[str, str], Contact] = {}
    query = Contact.objects.for_company(company)
    if emails:
        for known in query.filter(email__in=emails):
            found[("email", known.email or "")] = known
    if phones:
        for known in query.filter(phone__in=phones, email__isnull=True).order_by("pk"):
            found.setdefault(("phone", known.phone or ""), known)
    new: dict[tuple[str, str], Contact] = {}
    changed: dict[int, Contact] = {}
    result: dict[int, Contact | None] = {}
    for index, row in enumerate(rows):
        key = _contact_key(row)
        contact = None if key is None else found.get(key) or new.get(key)
        if key is None:
            pass
        elif contact is None:
            contact = Contact(
                company=company,
                email=row.values.get("email"),
                phone=row.values.get("phone"),
                name=row.values.get("name", "")[:200],
                properties=dict(row.properties),
            )
            if authority and "created_at" in row.values:
                contact.created_at = row.values["created_at"]
            new[key] = contact
        elif _contact_apply(contact, row, authority=authority) and contact.pk:
            changed[contact.pk] = contact
        result[index] = contact
    if new:
        Contact.objects.for_company(company).bulk_create(list(new.values()))
    if changed:
        now = timezone.now()
        for edited in changed.values():
            edited.updated_at = now
        Contact.objects.for_company(company).bulk_update(
            list(changed.values()), ["name", "phone", "properties", "updated_at"]
        )
    return result, len(new), len(changed)


def _response_key(row: Row) -> str:
    if row.values.get("response_id"):
        return str(row.values["response_id"])[:80]
    who = row.values.get("email") or row.values.get("phone") or row.values.get("person_id", "")
    raw = f"{who}|{row.values['created_at'].timestamp():.0f}|{row.values['score']}"
    raw += f"|{row.values.get('comment', '')}"
    return "sha:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def _channel(row: Row) -> str:
    said = str(row.values.get("channel", "")).lower()
    if "sms" in said or "text" in said:
        return ResponseChannel.SMS
    if "email" in said or "e-mail" in said:
        return ResponseChannel.EMAIL
    if said:
        return ResponseChannel.LINK  # web, link, kiosk, in-app, …
    if "email" in row.values:
        return ResponseChannel.EMAIL
    return ResponseChannel.SMS if "phone" in row.values else ResponseChannel.LINK


def _newer_edit(answer: Response, row: Row) -> bool:
    """Apply a later export's edit of an answer (a changed score or comment with a later
    ``updated_at``); the same export again changes nothing."""
    updated = row.values.get("updated_at")
    score, comment = row.values["score"], row.values.get("comment", "")
    if updated is None or updated <= answer.updated_at:
        return False
    if (answer.score, answer.comment) == (score, comment):
        return False
    answer.score, answer.category, answer.comment = score, category_of(score), comment
    answer.updated_at = updated
    return True


def _write_responses(*, company: Company, survey: Survey, rows: list[Row], counts: Counts) -> None:
    keys = [_response_key(r) for r in rows]
    existing: dict[str, Response | None] = {
        link.delighted_id: link.response
        for link in DelightedResponse.objects.for_company(company)
        .filter(delighted_id__in=set(keys))
        .select_related("response")
    }
    fresh: list[tuple[str, Row]] = []
    edited: list[Response] = []
    for key, row in zip(keys, rows, strict=True):
        if key not in existing:
            existing[key] = None  # the same answer twice in one file lands once
            fresh.append((key, row))
        elif (answer := existing[key]) is not None and _newer_edit(answer, row):
            edited.append(answer)
        else:
            counts.unchanged += 1
    if edited:
        Response.objects.for_company(company).bulk_update(
            edited, ["score", "category", "comment", "updated_at"]
        )
        counts.updated += len(edited)
    if not fresh:
        return
    contacts, _created, _updated = _contacts_upsert(
        company=company, rows=[r for _k, r in fresh], authority=False
    )
    language = survey.default_language or "en"
    answers: list[Response] = []
    for index, (_key, row) in enumerate(fresh):
        values = row.values
        created = values["created_at"]
        answers.append(
            Response(
                company=company,
                survey=survey,
                contact=contacts[index],
                score=values["score"],
                category=category_of(values["score"]),
                comment=values.get("comment", ""),
                channel=_channel(row),
                language=values.get("language", language),
                contact_properties=dict(row.properties),
                created_at=created,
                updated_at=max(values.get("updated_at", created), created),
            )
        )
    Response.objects.for_company(company).bulk_create(answers)
    DelightedResponse.objects.for_company(company).bulk_create(
        [
            DelightedResponse(
                company=company,
                response=answer,
                delighted_id=key,
                person_id=str(row.values.get("person_id", ""))[:80],
                tags=row.values.get("tags", []),
                notes=row.values.get("notes", []),
                permalink=str(row.values.get("permalink", ""))[:500],
            )
            for answer, (key, row) in zip(answers, fresh, strict=True)
        ]
    )
    counts.created += len(answers)


def _write_people(*, company: Company, rows: list[Row], counts: Counts) -> None:
    for row in rows:
        if "last_sent_at" in row.values:
            row.properties.setdefault("delighted_last_sent_at", row.values["last_sent_at"])
    _contacts, created, updated = _contacts_upsert(company=company, rows=rows, authority=True)
    counts.created += created
    counts.updated += updated
    counts.unchanged += len(rows) - created - updated


def _write_suppressions(*, company: Company, kind: str, rows: list[Row], counts: Counts) -> None:
    reason = (
        SuppressionReason.UNSUBSCRIBED
        if kind == ExportKind.UNSUBSCRIBES
        else SuppressionReason.BOUNCED
    )
    wanted: dict[tuple[str, str], Suppression] = {}
    for row in rows:
        if "email" in row.values:
            channel, address = Channel.EMAIL, row.values["email"]
        else:
            channel, address = Channel.SMS, row.values["phone"]
        address = normalize_address(channel, address)
        at = row.values.get("bounced_at" if kind == ExportKind.BOUNCES else "unsubscribed_at")
        wanted.setdefault(
            (channel, address),
            Suppression(
                company=company,
                channel=channel,
                address=address,
                reason=reason,
                detail=_("Imported from Delighted"),
                **({"created_at": at} if at else {}),
            ),
        )
    # An erased person's suppression is kept as a hash only: finding it, the import leaves
    # it so instead of writing the plain address back.
    hashed = {
        (channel, suppression_address_hash(company_id=company.pk, channel=channel, normalized=a)): (
            channel,
            a,
        )
        for channel, a in wanted
    }
    query = Q()
    for wanted_channel, wanted_address in [*wanted, *hashed]:
        query |= Q(channel=wanted_channel, address=wanted_address)
    there = {
        hashed.get(key, key)
        for key in Suppression.objects.for_company(company)
        .filter(query)
        .values_list("channel", "address")
    }
    new = [s for key, s in wanted.items() if key not in there]
    Suppression.objects.for_company(company).bulk_create(new, ignore_conflicts=True)
    counts.created += len(new)
    counts.unchanged += len(rows) - len(new)


# --- The error report ---------------------------------------------------------------------------


class _Report:
    """Rejected rows as CSV (original cells, line, reason), every cell formula-escaped."""

    def __init__(self, headers: list[str]) -> None:
        self.headers = headers
        self.csv = SpooledCsvReport([*headers, "error_line", "error"])
        self.kept: list[dict[str, Any]] = []

    def add(self, line: int, cells: list[Any], column: str, reason: str) -> None:
        texts = [_text(c) for c in cells[: len(self.headers)]]
        texts += [""] * (len(self.headers) - len(texts))
        self.csv.writerow([*texts, line, f"{column}: {reason}"])
        if len(self.kept) < ERRORS_KEPT:
            self.kept.append({"line": line, "column": column, "reason": reason})

    def save_to(self, imp: DelightedImport) -> None:
        self.csv.save_to(imp.error_report)


# --- The import as a whole ----------------------------------------------------------------------


def delighted_import_create(
    *,
    company: Company,
    upload: UploadedFile,
    batch: str | None = None,
    created_by: User | None = None,
) -> DelightedImport:
    """Store one export file and read its header row; raises ``ValidationError`` (``file``)."""
    file_name = (upload.name or "delighted.csv").rsplit("/", 1)[-1][:255]
    try:
        fmt = file_format(file_name)
        if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
            raise ImportFileError(
                _("The file is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // 2**20}
            )
        upload.seek(0)
        headers = read_headers(upload.file, fmt)  # type: ignore[arg-type]
    except ImportFileError as exc:
        raise ValidationError({"file": [f"{file_name}: {exc}"]}) from exc
    upload.seek(0)
    kind = detect_kind(headers)
    mapping, _unknown = suggest_mapping(headers, kind)
    imp = DelightedImport(
        company=company,
        batch=batch or uuid.uuid4().hex,
        kind=kind,
        file_name=file_name,
        headers=headers,
        mapping=mapping,
        created_by=created_by,
    )
    imp.file.save(file_name, upload, save=False)
    imp.save()
    return imp


def delighted_import_samples(*, imp: DelightedImport) -> dict[str, list[str]]:
    """Header → the first few values of that column (empty when the file cannot be read:
    the check page works without them)."""
    try:
        with imp.file.open("rb") as binary:
            samples = read_head(binary, file_format(imp.file_name)).samples
    except (ImportFileError, OSError, ValueError):
        return {}
    return {h: samples[h] for h in imp.headers if h in samples}


def unrecognised_headers(imp: DelightedImport) -> list[str]:
    return suggest_mapping(imp.headers, imp.kind)[1]


def default_survey(*, company: Company, created_by: User | None = None) -> Survey:
    """The survey imported answers go to unless another is chosen: the company's one survey
    for Delighted, the one its API at ``/v1/`` uses too (created if needed)."""
    return default_survey_ensure(company=company, created_by=created_by)


def delighted_import_start(
    *,
    company: Company,
    imp: DelightedImport,
    kind: str | None = None,
    mapping: dict[str, str] | None = None,
    survey: Survey | None = None,
    in_worker: bool = True,
) -> DelightedImport:
    """Fix kind, mapping and (for answers) survey, and hand the file to a worker (unless
    ``in_worker`` is off: the command line runs it itself).

    Raises ``ValidationError`` for a kind or mapping that cannot work, or a started import.
    """
    if imp.company_id != company.pk:
        raise ValueError("import belongs to another company")
    kind = kind or imp.kind
    if mapping is None or kind != imp.kind:
        mapping = {**suggest_mapping(imp.headers, kind)[0], **(mapping or {})}
    final = validate(kind, imp.headers, mapping)
    if survey is not None and survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    if kind == ExportKind.RESPONSES and survey is None:
        survey = default_survey(company=company, created_by=imp.created_by)
    target_survey = survey if kind == ExportKind.RESPONSES else None
    with transaction.atomic():
        started = (
            DelightedImport.objects.for_company(company)
            .filter(pk=imp.pk, status=DelightedImportStatus.PENDING)
            .update(
                kind=kind,
                mapping=final,
                survey=target_survey,
                status=DelightedImportStatus.RUNNING,
                queued_at=timezone.now(),
            )
        )
        if not started:
            raise ValidationError(_("This import has already started."))
        imp.refresh_from_db()
        audit_record(
            company=company,
            action=AuditAction.DELIGHTED_IMPORT_STARTED,
            target=imp,
            target_label=imp.file_name,
            changes={
                "kind": [None, kind],
                "survey": [None, target_survey.name if target_survey else None],
            },
        )
    if in_worker:
        wake(IMPORT_TASK, company.pk, imp.pk)
    return imp


def _data_rows(binary: IO[bytes], fmt: str) -> Iterator[tuple[int, list[Any]]]:
    """(line, cells) of every non-blank row after the header row."""
    header_seen = False
    for line, cells in enumerate(iter_file_rows(binary, fmt), start=1):
        if not any(_text(c) for c in cells):
            continue
        if not header_seen:
            header_seen = True
            continue
        yield line, cells


def delighted_import_run(*, company: Company, import_pk: int) -> DelightedImport | None:
    """The task's body: claim a started import, check the whole file, then write it in chunks.
    A redelivered task whose import another run claimed does nothing (returns None)."""
    imports = DelightedImport.objects.for_company(company).filter(pk=import_pk)
    claimed = imports.filter(status=DelightedImportStatus.RUNNING, started_at=None).update(
        started_at=timezone.now()
    )
    if not claimed:
        return None
    imp = imports.get()
    fmt = file_format(imp.file_name)
    report = _Report(imp.headers)
    counts = Counts()
    try:
        # Pass 1: the whole file readable (encoding, quoting)? Nothing lands otherwise.
        with imp.file.open("rb") as binary:
            total = sum(1 for _row in _data_rows(binary, fmt))
        imports.update(rows_total=total)
        with imp.file.open("rb") as binary:
            _run_rows(
                company=company, imp=imp, rows=_data_rows(binary, fmt), report=report, counts=counts
            )
    except (ImportFileError, DatabaseError, ValidationError) as exc:
        logger.warning("delighted import %s failed: %s", imp.public_id, exc)
        imp.refresh_from_db()
        imp.status = DelightedImportStatus.FAILED
        imp.failure = (
            "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)[:500]
        )
    else:
        imp.refresh_from_db()
        imp.status = DelightedImportStatus.DONE
    imp.rows_done = counts.rows
    imp.created_count = counts.created
    imp.updated_count = counts.updated
    imp.unchanged_count = counts.unchanged
    imp.invalid_count = counts.invalid
    imp.errors = report.kept
    report.save_to(imp)
    imp.finished_at = timezone.now()
    imp.save()
    return imp


def _run_rows(
    *,
    company: Company,
    imp: DelightedImport,
    rows: Iterator[tuple[int, list[Any]]],
    report: _Report,
    counts: Counts,
    chunk_size: int = CHUNK_SIZE,
) -> None:
    parser = _Parser(company, imp)
    survey = imp.survey
    if imp.kind == ExportKind.RESPONSES and survey is None:
        raise ValidationError(_("The survey of this import was deleted."))
    imports = DelightedImport.objects.for_company(company).filter(pk=imp.pk)

    def write(chunk: list[Row]) -> None:
        for attempt in (1, 2):
            done = Counts(**vars(counts))
            try:
                with transaction.atomic():
                    if imp.kind == ExportKind.RESPONSES:
                        assert survey is not None
                        _write_responses(company=company, survey=survey, rows=chunk, counts=done)
                    elif imp.kind == ExportKind.PEOPLE:
                        _write_people(company=company, rows=chunk, counts=done)
                    else:
                        _write_suppressions(company=company, kind=imp.kind, rows=chunk, counts=done)
                    imports.update(
                        rows_done=done.rows,
                        created_count=done.created,
                        updated_count=done.updated,
                        unchanged_count=done.unchanged,
                        invalid_count=done.invalid,
                    )
            except IntegrityError:
                # Another writer took an address of this chunk meanwhile: match again.
                if attempt == 2:
                    raise
                continue
            counts.__dict__.update(vars(done))
            return

    chunk: list[Row] = []
    for line, cells in rows:
        counts.rows += 1
        try:
            chunk.append(parser.parse(line, cells))
        except RowError as exc:
            counts.invalid += 1
            report.add(line, cells, exc.column, exc.reason)
        if len(chunk) >= chunk_size:
            write(chunk)
            chunk = []
    if chunk:
        write(chunk)


def delighted_imports_rewake(*, older_than: dt.timedelta = dt.timedelta(minutes=2)) -> int:
    """Imports handed to a worker that no worker claimed (their message was lost): woken
    again. The claim on ``started_at`` keeps a late duplicate from running one twice."""
    now = timezone.now()
    imports = DelightedImport.objects.unscoped(reason="the stale sweep serves every company")
    with transaction.atomic():
        stale = list(
            imports.select_for_update(skip_locked=True)
            .filter(
                status=DelightedImportStatus.RUNNING,
                started_at=None,
                queued_at__lt=now - older_than,
            )
            .values_list("pk", "company_id")[:100]
        )
        if stale:
            imports.filter(pk__in=[pk for pk, _c in stale]).update(queued_at=now)
            for pk, company_id in stale:
                wake(IMPORT_TASK, company_id, pk)
    return len(stale)
