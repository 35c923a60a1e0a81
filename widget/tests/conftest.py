from __future__ import annotations

from collections.abc import Iterator

import pytest

from widget.selectors import widget_key_cache_clear


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> Iterator[None]:
    """Each test starts without another test's widgets (their ids are reused)."""
    widget_key_cache_clear()
    yield
    widget_key_cache_clear()
