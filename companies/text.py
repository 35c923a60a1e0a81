"""The one sanitation point for text that reaches the database.

PostgreSQL text cannot hold NUL, and psycopg2 cannot encode an unpaired UTF-16 surrogate
(``"\\udfff"``, which JSON's ``\\u`` escapes can carry): either one stored nowhere but raised a
500, or worse, was stored where SQLite let it and then broke every page that read it. Request
bodies (``companies.api_parsers``), query parameters and path parameters
(``companies.middleware.StorableTextMiddleware``) are checked here before any view runs a
query; web forms refuse NUL through Django's own ``ProhibitNullCharactersValidator``, and their
urlencoded bodies cannot carry a surrogate (Django decodes them with replacement characters).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

UNSTORABLE_MESSAGE = _("Text may not contain NUL characters or unpaired surrogates.")
TOO_DEEP_MESSAGE = _("The JSON body is nested too deeply.")

# Deeper than any body the API takes (properties are one level of scalars); bounds the work a
# hostile body makes us do and keeps every later recursive walk (serializers, json.dumps) safe.
MAX_JSON_DEPTH = 32


def is_storable(value: str) -> bool:
    """Whether PostgreSQL (and psycopg2) can store ``value`` as text."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TooDeep(ValueError):
    """A parsed JSON document nests deeper than ``MAX_JSON_DEPTH``."""


def unstorable_path(data: Any) -> tuple[str | int, ...] | None:
    """The path to the first key or string in ``data`` that cannot be stored, else None.

    Walks without recursion; raises ``TooDeep`` for documents deeper than ``MAX_JSON_DEPTH``.
    """
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            raise TooDeep
        if isinstance(value, str):
            if not is_storable(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                key_path = (*path, str(key))
                if isinstance(key, str) and not is_storable(key):
                    return key_path
                stack.append((key_path, item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return None
