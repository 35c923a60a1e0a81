"""The provider token bucket: shared through Redis, never faster than its rate."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings

from notifications.ratelimit import RateLimitTimeout, TokenBucket


def take_concurrently(make_bucket: Callable[[], TokenBucket], *, threads: int, each: int) -> float:
    """Each thread, with its own bucket object (own connection), takes ``each`` tokens."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker() -> None:
        bucket = make_bucket()
        barrier.wait()
        try:
            for _ in range(each):
                bucket.acquire(1, timeout=10)
        except BaseException as err:
            errors.append(err)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=20)
    assert not errors
    return time.monotonic() - started


def test_two_workers_sharing_the_redis_bucket_do_not_exceed_the_rate() -> None:
    name = f"test:{uuid.uuid4().hex}"
    rate, capacity = 100.0, 5

    def make() -> TokenBucket:
        return TokenBucket(name, rate=rate, capacity=capacity, redis_url=settings.REDIS_URL)

    elapsed = take_concurrently(make, threads=2, each=50)
    # 100 tokens: 5 from the full bucket, 95 refilled at 100/s -> at least 0.95 s together.
    # Two separate buckets (no sharing) would need only ~0.45 s each, in parallel.
    assert elapsed >= 0.9
    assert elapsed < 5


def test_the_in_process_bucket_is_shared_by_threads() -> None:
    name = f"test:{uuid.uuid4().hex}"
    elapsed = take_concurrently(
        lambda: TokenBucket(name, rate=100.0, capacity=5, redis_url=""), threads=2, each=50
    )
    assert 0.9 <= elapsed < 5


def test_a_request_larger_than_the_bucket_is_taken_in_parts() -> None:
    bucket = TokenBucket(
        f"test:{uuid.uuid4().hex}", rate=200.0, capacity=10, redis_url=settings.REDIS_URL
    )
    started = time.monotonic()
    bucket.acquire(50, timeout=5)
    assert 0.18 <= time.monotonic() - started < 3  # 40 tokens beyond the burst at 200/s


def test_acquire_gives_up_at_the_timeout_without_waiting_for_nothing() -> None:
    bucket = TokenBucket(
        f"test:{uuid.uuid4().hex}", rate=1.0, capacity=1, redis_url=settings.REDIS_URL
    )
    bucket.acquire(1, timeout=1)
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout):
        bucket.acquire(1, timeout=0.1)
    assert time.monotonic() - started < 0.5
