"""One fixed-window rate limiter for every place that counts calls in the shared cache.

``window_counts`` counts one call against each named limit of a request and returns the
counts in the current window: with Redis (the shared cache outside the embedded default) in
one round trip, a pipeline of ``INCR`` + ``EXPIRE`` per key, atomic per key across processes;
with any other cache backend through ``cache.add``/``cache.incr``. A client may burst up to
twice a limit across a window boundary, which is acceptable for abuse protection.

The counters are ordinary cache entries (``cache.get(name)`` reads one), named
``<name>:<window number>``. (notifications/ratelimit.py is a token bucket, not this.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache


@dataclass(frozen=True)
class Window:
    """Where a request stands in the current window of ``seconds``."""

    counts: tuple[int, ...]
    number: int
    seconds: int
    now: float

    def over(self, *limits: int) -> bool:
        """Whether any count is beyond its limit (in the order the names were given)."""
        return any(count > limit for count, limit in zip(self.counts, limits, strict=True))

    @property
    def remaining_seconds(self) -> float:
        return (self.number + 1) * self.seconds - self.now


def window_counts(names: list[str], *, seconds: int) -> Window:
    """Count one call against each of ``names`` in the current window of ``seconds``."""
    now = time.time()
    number = int(now // seconds)
    keys = [f"{name}:{number}" for name in names]
    timeout = seconds + 1
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        counts = _redis_counts(cache, keys, timeout)
    else:
        counts = [_generic_count(cache, key, timeout) for key in keys]
    return Window(counts=tuple(counts), number=number, seconds=seconds, now=now)


def _redis_counts(cache: RedisCache, keys: list[str], timeout: int) -> list[int]:
    """One round trip: INCR then EXPIRE of each key. Each call pushes the expiry on, at
    most ``timeout`` past the window's last call: the window's number is in the key, so a
    later window never reads it."""
    made = [cache.make_and_validate_key(key) for key in keys]
    client = cache._cache.get_client(made[0], write=True)  # type: ignore[attr-defined]
    pipe = client.pipeline(transaction=False)
    for key in made:
        pipe.incr(key)
        pipe.expire(key, timeout)
    results = pipe.execute()
    return [int(count) for count in results[::2]]


def _generic_count(cache: BaseCache, key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=timeout)
        return 1
