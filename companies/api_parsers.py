"""The API's JSON parser: DRF's, with hostile bodies refused as 400s in the API's error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import exceptions, parsers

from companies.text import TOO_DEEP_MESSAGE, UNSTORABLE_MESSAGE, TooDeep, unstorable_path


class JSONParser(parsers.JSONParser):
    """Refuses bodies nested too deeply and text that cannot be stored (see companies.text).

    A too-deep body is a parse error; unstorable text is a field error on the top-level field
    that holds it (``non_field_errors`` when the body is not an object).
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError(TOO_DEEP_MESSAGE) from exc
        try:
            path = unstorable_path(data)
        except TooDeep as exc:
            raise exceptions.ParseError(TOO_DEEP_MESSAGE) from exc
        if path is not None:
            field = str(path[0]) if path and isinstance(data, dict) else "non_field_errors"
            raise exceptions.ValidationError({field: [UNSTORABLE_MESSAGE]})
        return data
