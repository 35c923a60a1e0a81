"""The shared fixed-window limiter: counts per name, one Redis round trip for all of them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.test import override_settings

from companies.ratelimit import window_counts


def _same_window(seconds: int, run: Any) -> Any:
    """Run ``run`` again if a window boundary fell inside it (the counts would restart)."""
    for _attempt in range(3):
        start = int(time.time() // seconds)
        result = run()
        if int(time.time() // seconds) == start:
            return result, start
    raise AssertionError("three window boundaries in a row")


def test_each_name_counts_its_own_calls_in_the_window() -> None:
    prefix = f"rl-test:{time.time_ns()}"

    def run() -> Any:
        first = window_counts([f"{prefix}:a", f"{prefix}:b"], seconds=60)
        second = window_counts([f"{prefix}:a"], seconds=60)
        third = window_counts([f"{prefix}:a", f"{prefix}:b"], seconds=60)
        return first, second, third

    (first, second, third), window = _same_window(60, run)
    assert (first.counts, second.counts, third.counts) == ((1, 1), (2,), (3, 2))
    assert third.over(2, 2)
    assert not third.over(3, 2)
    assert not third.over(3, 3)
    assert 0 < third.remaining_seconds <= 60
    # Ordinary cache entries that expire after their window.
    assert cache.get(f"{prefix}:a:{window}") == 3
    if isinstance(caches["default"], RedisCache):
        client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
        ttl = client.ttl(caches["default"].make_and_validate_key(f"{prefix}:a:{window}"))
        assert 0 < ttl <= 61


def test_all_limits_of_a_call_take_one_redis_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        pytest.skip("the embedded default has no Redis")
    from redis.client import Pipeline

    executed: list[int] = []
    original = Pipeline.execute

    def counting(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        executed.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counting)
    prefix = f"rl-test:{time.time_ns()}"
    window_counts([f"{prefix}:{n}" for n in range(3)], seconds=60)
    assert executed == [6]  # INCR + EXPIRE of each of the three, sent together


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
def test_other_cache_backends_count_too() -> None:
    def run() -> Any:
        window_counts(["rl-test:local"], seconds=60)
        return window_counts(["rl-test:local", "rl-test:other"], seconds=60)

    second, _window = _same_window(60, run)
    assert second.counts == (2, 1)
