"""Helpers shared by the companies' management commands (the command-line contract)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


def one_line(exc: ValidationError) -> str:
    """Every message of a ValidationError on one line: scripts read errors line by line."""
    return " ".join(" ".join(str(message).split()) for message in exc.messages)


def command_error(exc: ValidationError) -> CommandError:
    """A CommandError: Django prints it as one ``CommandError: …`` line and exits with 1."""
    return CommandError(one_line(exc))
