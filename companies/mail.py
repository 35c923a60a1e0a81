"""Email parts from templates, and header values that stay one line.

Every email of the product is a set of three templates side by side, ``<base>_subject.txt``,
``<base>.txt`` and ``<base>.html``, rendered by ``render_email``. The subject and the text part
are plain text: they are rendered with autoescaping off (a comment ``<b>Tom & Jerry</b>`` reads
as typed, not as ``&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;``); only the HTML part escapes.

Anything that reaches an email header (subject, sender name, reply-to, extra headers) goes
through ``header_safe``: line breaks cannot start a header of their own, and Django's
``BadHeaderError`` for a name typed with a newline cannot fail a send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.template import Context, engines
from django.template.backends.django import DjangoTemplates


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def header_safe(value: str) -> str:
    """``value`` on one line: every run of whitespace, CR and LF included, is one space."""
    return " ".join(value.split())


def render_text(template_name: str, context: Mapping[str, Any]) -> str:
    """A plain-text template rendered without HTML escaping."""
    backend = engines["django"]
    assert isinstance(backend, DjangoTemplates)
    template = backend.engine.get_template(template_name)
    return template.render(Context(dict(context), autoescape=False))


def render_email(base: str, context: Mapping[str, Any]) -> RenderedEmail:
    """``<base>_subject.txt`` (one line), ``<base>.txt`` and ``<base>.html`` with ``context``."""
    backend = engines["django"]
    return RenderedEmail(
        subject=header_safe(render_text(f"{base}_subject.txt", context)),
        text=render_text(f"{base}.txt", context),
        html=backend.get_template(f"{base}.html").render(dict(context)),
    )
