"""A campaign's audience in words ("plan is gold"), not its stored JSON."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

register = template.Library()


def _values(value: Any) -> list[str]:
    """Typed-in values are stored with their numeric twin ("30" and 30): show each once."""
    items = value if isinstance(value, list) else [value]
    shown: list[str] = []
    for item in items:
        text = str(item).lower() if isinstance(item, bool) else str(item)
        if text not in shown:
            shown.append(text)
    return shown


@register.filter
def audience_conditions(audience: dict[str, Any] | None) -> list[str]:
    """``{"filters": [{"property": "segment", "op": "in", "value": ["sms-test"]}]}`` →
    ``["segment is sms-test"]``; an empty list for every contact."""
    conditions: list[str] = []
    negated: dict[str, list[str]] = {}
    for item in (audience or {}).get("filters") or []:
        prop, op, value = str(item.get("property", "")), item.get("op", "eq"), item.get("value")
        if op == "neq":  # one row per candidate: gathered into one condition below
            negated.setdefault(prop, [])
            negated[prop] += [v for v in _values(value) if v not in negated[prop]]
            continue
        if op == "exists":
            text = _("%(property)s is set") % {"property": prop}
        else:
            values = _values(value)
            if len(values) == 1:
                text = _("%(property)s is %(value)s") % {"property": prop, "value": values[0]}
            else:
                text = _("%(property)s is one of %(values)s") % {
                    "property": prop,
                    "values": ", ".join(values),
                }
        if text not in conditions:
            conditions.append(text)
    for prop, values in negated.items():
        if len(values) == 1:
            text = _("%(property)s is not %(value)s") % {"property": prop, "value": values[0]}
        else:
            text = _("%(property)s is none of %(values)s") % {
                "property": prop,
                "values": ", ".join(values),
            }
        conditions.append(text)
    return conditions


@register.filter
def property_value(value: Any) -> str:
    """A contact property as people read it: a list as "a, b", not "['a', 'b']"."""
    if isinstance(value, list):
        return ", ".join(property_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {property_value(item)}" for key, item in value.items())
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None:
        return "—"
    return str(value)
