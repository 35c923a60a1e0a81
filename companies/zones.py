"""Time zones as people read them: the company's zone, its label, and the grouped list a
person picks one from.

``zoneinfo.available_timezones()`` holds ~600 names, deprecated links included
("Asia/Calcutta", "US/Pacific", "Etc/GMT+5"). People pick from the tz database's own list of
current zones per country (``zone.tab``, shipped next to the zone files wherever zoneinfo finds
them), grouped by region and labelled with the city and the UTC offset. A stored value
outside that list (set before, or through the API) stays valid: the model keeps every name.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    from companies.models import Company

UTC = "UTC"

REGIONS: dict[str, _StrPromise] = {
    "Africa": _("Africa"),
    "America": _("America"),
    "Antarctica": _("Antarctica"),
    "Arctic": _("Arctic"),
    "Asia": _("Asia"),
    "Atlantic": _("Atlantic"),
    "Australia": _("Australia"),
    "Europe": _("Europe"),
    "Indian": _("Indian Ocean"),
    "Pacific": _("Pacific"),
}


def zone_of(name: str | None) -> zoneinfo.ZoneInfo:
    """The zone called ``name``; UTC for a blank or unknown name."""
    try:
        return zoneinfo.ZoneInfo(name or UTC)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(UTC)


def company_zone(company: Company) -> zoneinfo.ZoneInfo:
    return zone_of(company.time_zone)


def utc_offset(name: str, *, at: datetime | None = None) -> str:
    """``UTC+05:00`` (now, or at ``at``: summer time changes it)."""
    offset = (at or timezone.now()).astimezone(zone_of(name)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "−" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def city_of(name: str) -> str:
    """``Asia/Almaty`` → ``Almaty``; ``America/Argentina/Buenos_Aires`` → ``Buenos Aires
    (Argentina)``, which tells ``America/North_Dakota/Center`` from other centres."""
    parts = name.replace("_", " ").split("/")
    if len(parts) > 2:
        return f"{parts[-1]} ({parts[-2]})"
    return parts[-1]


def zone_label(name: str, *, at: datetime | None = None, full: bool = False) -> str:
    """``Almaty (UTC+05:00)`` (``full``: ``Asia/Almaty (UTC+05:00)``); ``UTC`` alone for UTC."""
    if name == UTC or not name:
        return UTC
    place = name.replace("_", " ") if full else city_of(name)
    return f"{place} ({utc_offset(name, at=at)})"


@functools.cache
def current_zone_names() -> tuple[str, ...]:
    """The tz database's current zone names, one or more per country (``zone.tab``)."""
    for directory in zoneinfo.TZPATH:
        table = Path(directory) / "zone.tab"
        if table.is_file():
            names = {
                fields[2]
                for line in table.read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#") and len(fields := line.split("\t")) >= 3
            }
            available = zoneinfo.available_timezones()
            return tuple(sorted(name for name in names if name in available))
    # No table (an unusual tz installation): the region zones, deprecated links included.
    return tuple(sorted(n for n in zoneinfo.available_timezones() if n.split("/", 1)[0] in REGIONS))


@functools.cache
def zone_aliases() -> dict[str, str]:
    """Older names → a listed zone with the same rules (the same tz file: a link). Browsers
    still report some older names (Chrome says ``Asia/Calcutta``, ``Europe/Kiev``); the
    sign-up page uses this to pre-select the browser's zone."""
    listed = current_zone_names()
    for directory in zoneinfo.TZPATH:
        root = Path(directory)
        if not (root / "zone.tab").is_file():
            continue
        by_content: dict[bytes, str] = {}
        for name in listed:
            if (root / name).is_file():
                by_content.setdefault((root / name).read_bytes(), name)
        aliases: dict[str, str] = {}
        for name in sorted(zoneinfo.available_timezones() - set(listed)):
            path = root / name
            target = by_content.get(path.read_bytes()) if path.is_file() else None
            if target is not None:
                aliases[name] = target
        return aliases
    return {}


ZoneChoices = list[tuple[str, str] | tuple[str, list[tuple[str, str]]]]


def zone_choices(*, current: str = "") -> ZoneChoices:
    """Choices for a select: UTC first, then one group per region, cities alphabetically
    (a browser's select finds a city as it is typed). ``current`` is kept if it is a stored
    value outside the list."""
    now = timezone.now()
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in current_zone_names():
        groups.setdefault(name.split("/", 1)[0], []).append((name, zone_label(name, at=now)))
    choices: ZoneChoices = [(UTC, UTC)]
    for region, label in REGIONS.items():
        if region in groups:
            members = sorted(groups[region], key=lambda choice: choice[1])
            choices.append((str(label), members))
    if current and current != UTC and current not in current_zone_names():
        choices.append((str(_("Other")), [(current, f"{current} ({utc_offset(current)})")]))
    return choices
