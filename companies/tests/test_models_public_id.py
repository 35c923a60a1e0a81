"""Public ids: random, URL-safe, and usable as a command-line argument."""

from __future__ import annotations

import pytest

from companies.models import new_public_id


def test_a_public_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # ``create_api_key --survey -Kx…`` read the id as an option (a flaky CLI test showed it).
    draws = ["-Kx3vQ9aT2mPz7Lw", "Kx3vQ9aT2mPz7Lw-"]
    monkeypatch.setattr("secrets.token_urlsafe", lambda _n: draws.pop(0))
    assert new_public_id() == "Kx3vQ9aT2mPz7Lw-"
