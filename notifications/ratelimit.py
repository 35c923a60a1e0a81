"""Provider rate limits shared by every worker: a token bucket in Redis.

One bucket per provider (``nps:ratelimit:<name>``), ``rate`` tokens per second refilled up to
``capacity``. A token is one message (one recipient of a batch): providers state their limits
in messages per second (Amazon SES's "maximum send rate"), and a batch of 500 costs 500.

The refill and the take happen in one Lua script, so two workers never both spend the same
tokens, and the time comes from the Redis server (``TIME``), so workers with drifting clocks
still agree. ``acquire`` blocks (sleeping the time the script says is missing) until the
tokens are taken or ``timeout`` passes; a request larger than the bucket is taken in parts.

Without ``REDIS_URL`` (the embedded default: one process) the same bucket lives in memory.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Protocol

from django.conf import settings

# KEYS[1]: the bucket. ARGV: rate (tokens/s), capacity, requested tokens (<= capacity).
# Returns "0" when the tokens were taken, else the seconds until they would be available
# (nothing is taken then). A string, because Redis turns Lua numbers into integers.
_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= requested then
  tokens = tokens - requested
else
  wait = (requested - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


class RateLimitTimeout(Exception):
    """The tokens did not become available within the timeout; nothing was taken."""


class _Bucket(Protocol):
    def try_take(self, tokens: int) -> float:
        """Take ``tokens`` and return 0, or take nothing and return the seconds to wait."""
        ...


class RedisBucket:
    def __init__(self, *, key: str, rate: float, capacity: int, redis_url: str) -> None:
        self.key, self.rate, self.capacity = key, rate, capacity
        self._script = _redis_client(redis_url).register_script(_TAKE_SCRIPT)

    def try_take(self, tokens: int) -> float:
        result = self._script(keys=[self.key], args=[self.rate, self.capacity, tokens])
        return float(result.decode() if isinstance(result, bytes) else result)


class MemoryBucket:
    """The same bucket for one process (threads share it through the lock)."""

    def __init__(self, *, rate: float, capacity: int) -> None:
        self.rate, self.capacity = rate, capacity
        self._tokens = float(capacity)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def try_take(self, tokens: int) -> float:
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._updated
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now
            if self._tokens >= tokens:
                self._tokens -= tokens
                return 0.0
            return (tokens - self._tokens) / self.rate


class TokenBucket:
    """A named rate limit. ``acquire(n)`` blocks until ``n`` tokens are taken."""

    def __init__(
        self, name: str, *, rate: float, capacity: int, redis_url: str | None = None
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.name, self.rate, self.capacity = name, rate, capacity
        url = settings.REDIS_URL if redis_url is None else redis_url
        self._bucket: _Bucket
        if url:
            self._bucket = RedisBucket(
                key=f"nps:ratelimit:{name}", rate=rate, capacity=capacity, redis_url=url
            )
        else:
            self._bucket = _memory_bucket(name, rate, capacity)

    def acquire(self, tokens: int = 1, *, timeout: float | None = None) -> None:
        """Take ``tokens``, waiting as long as needed but at most ``timeout`` seconds.

        Raises RateLimitTimeout when the wait would exceed the timeout. Tokens already taken
        for part of a request larger than the bucket stay spent (they were real capacity).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        remaining = tokens
        while remaining > 0:
            part = min(remaining, self.capacity)
            wait = self._bucket.try_take(part)
            if wait <= 0:
                remaining -= part
                continue
            if deadline is not None and time.monotonic() + wait > deadline:
                raise RateLimitTimeout(
                    f"rate limit {self.name!r}: {part} tokens not available within the timeout"
                )
            time.sleep(wait)


@cache
def _redis_client(url: str):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(url)


_memory_buckets: dict[tuple[str, float, int], MemoryBucket] = {}
_memory_lock = threading.Lock()


def _memory_bucket(name: str, rate: float, capacity: int) -> MemoryBucket:
    with _memory_lock:
        key = (name, rate, capacity)
        if key not in _memory_buckets:
            _memory_buckets[key] = MemoryBucket(rate=rate, capacity=capacity)
        return _memory_buckets[key]


def email_bucket(provider: str) -> TokenBucket:
    """The shared bucket of an email provider, sized by the EMAIL_RATE_* settings."""
    return TokenBucket(
        f"email:{provider}",
        rate=settings.EMAIL_RATE_PER_SECOND,
        capacity=settings.EMAIL_RATE_BURST,
    )
