"""One date format and one date-time format per UI language (``FORMAT_MODULE_PATH``).

Templates use ``DATE_FORMAT`` and ``DATETIME_FORMAT``; the short names are the same formats,
so a page never mixes two ways of writing a date. Machine-read values (``<time datetime>``,
CSV, JSON) use ISO 8601 instead (``|date:'c'``, ``isoformat()``).
"""
