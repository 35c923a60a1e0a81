"""The explicit mark of a system job: work that may cross companies on purpose.

Product statements name one company (``company_id = <one value>``), so that a Citus cluster
distributed by ``company_id`` routes each to one shard (docs/scaling.md). A few jobs must
read or write across companies (sweeps that re-wake owed work, dispatchers, rollup folds,
industry benchmarks, API key lookup). Those statements run inside ``system_job(reason)``,
or come from a queryset built with ``.unscoped(reason=...)``; both are visible to the test
that records every statement of the suite (``tests/shard_check.py``). The mark changes
nothing at run time: it documents, for the reader and for that test, which statements
are cross-shard by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("nps_system_job", default=None)


@contextmanager
def system_job(reason: str) -> Iterator[None]:
    """Mark the statements run inside as a cross-company system job; say why in ``reason``."""
    assert reason, "say why this job may cross companies"
    token = _current.set(reason)
    try:
        yield
    finally:
        _current.reset(token)


def current_system_job() -> str | None:
    """The reason of the system job running in this context, if any."""
    return _current.get()
