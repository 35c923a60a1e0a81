"""Would every statement the product sends route to one Citus shard?

Citus distributes every tenant table by ``company_id`` (docs/scaling.md). Its router planner
sends a statement to one shard when every distributed table in it is restricted to one
``company_id`` value, directly (``t.company_id = %s``) or through an equality with a
restricted co-located table (``a.company_id = b.company_id``), and an INSERT's rows all
belong to one company. Anything else fans out to every shard: fine for a marked system job
(``companies/system_jobs.py``, ``.unscoped(reason=...)``), a scaling bug anywhere else.

This pytest plugin (``-p tests.shard_check``, in pyproject's addopts) records every statement
sent while a test *runs* (not fixtures' setup and teardown, not migrations, not statements a
test module sends itself), on every connection (live-server threads included) and in Celery
worker subprocesses (through ``NPS_SHARD_RECORD``, read by ``tests/celery_tasks.py``). At the
end of the session it prints the violators grouped by call site (the innermost frame in
product code) with their SQL and counts, and fails the run if a call site is not in
``tests/shard_allowlist.txt``: that list of known offenders only shrinks.
``NPS_SHARD_CHECK=0`` switches the plugin off; ``NPS_SHARD_ALLOWLIST_ADD=1`` appends the
call sites not yet listed instead of failing (once, when merging code older than the check).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = Path(__file__).with_name("shard_allowlist.txt")
RECORD_ENV = "NPS_SHARD_RECORD"
_SELF = str(Path(__file__).resolve())
# The choke point itself is no call site: the statement belongs to whoever called it.
_PLUMBING = (_SELF, str(ROOT / "companies" / "tenancy.py"))
_VENV = str(ROOT / ".venv")


# -- the rule ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def tenant_tables() -> frozenset[str]:
    """Tables with a ``company_id`` column: Citus distributes them by it. ``companies_company``
    and the global tables (users, benchmarks, sessions) are reference tables."""
    from django.apps import apps

    tables = set()
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        if any(getattr(f, "column", None) == "company_id" for f in model._meta.local_fields):
            tables.add(model._meta.db_table)
    return frozenset(tables)


@dataclass(frozen=True)
class Verdict:
    single_shard: bool
    why: str = ""
    # An INSERT is single-shard when the parameters at these positions are all equal.
    same_params: tuple[int, ...] = ()


SINGLE = Verdict(True)


def _conjuncts(node: exp.Expr | None) -> Iterator[exp.Expr]:
    """The atoms ANDed together at the top of a condition (an OR restricts nothing)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if node is None:
        return
    if isinstance(node, exp.And):
        yield from _conjuncts(node.left)
        yield from _conjuncts(node.right)
    else:
        yield node


def _single_value(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Placeholder | exp.Literal | exp.Cast) and not node.find(exp.Column)


def _enclosing_tables(node: exp.Expr) -> list[str]:
    """Names (aliases) of the tables of the statement a column without qualifier belongs to."""
    scope = node.find_ancestor(exp.Select, exp.Update, exp.Delete)
    if scope is None:
        return []
    names = []
    candidates: list[exp.Expr] = []
    if isinstance(scope, exp.Select):
        if scope.args.get("from_"):
            candidates.append(scope.args["from_"].this)
        candidates += [join.this for join in scope.args.get("joins") or []]
    else:
        candidates.append(scope.this)
    for table in candidates:
        if isinstance(table, exp.Table):
            names.append(table.alias_or_name)
    return names


def _owner(column: exp.Expr) -> str | None:
    if isinstance(column, exp.Column) and column.table:
        return str(column.table)
    tables = _enclosing_tables(column)
    return tables[0] if len(tables) == 1 else None


def _unparen(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _is_company_column(node: exp.Expr) -> bool:
    return isinstance(node, exp.Column) and node.name == "company_id"


@cache
def analyse(sql: str) -> Verdict:
    """Whether ``sql`` (as Django sends it, ``%s`` placeholders) routes to one shard."""
    tenants = tenant_tables()
    if not any(f'"{table}"' in sql for table in tenants):
        return SINGLE
    try:
        statements = sqlglot.parse(sql.replace("%%", "%"), read="postgres")
    except sqlglot.errors.SqlglotError as error:
        return Verdict(False, f"unparsed: {str(error).splitlines()[0][:80]}")
    verdicts = [_analyse_statement(s) for s in statements if s is not None]
    failing = [v for v in verdicts if not v.single_shard]
    if failing:
        return failing[0]
    same = tuple(i for v in verdicts for i in v.same_params)
    return Verdict(True, same_params=same)


def _analyse_statement(tree: exp.Expr) -> Verdict:
    tenants = tenant_tables()
    inserted: set[int] = set()  # ids of INSERT targets: their rows are checked apart
    same_params: tuple[int, ...] = ()
    for insert in tree.find_all(exp.Insert):
        target = insert.this
        table = target.this if isinstance(target, exp.Schema) else target
        if isinstance(table, exp.Table) and table.name in tenants:
            inserted.add(id(table))
            verdict = _insert_rows(insert, target)
            if not verdict.single_shard:
                return verdict
            if insert is tree:  # parameter positions are only known for a plain INSERT
                same_params = verdict.same_params

    # Every tenant table the statement reads or writes, by the name its columns use.
    used = {
        table.alias_or_name: table.name
        for table in tree.find_all(exp.Table)
        if table.name in tenants and id(table) not in inserted
    }
    if not used:
        return Verdict(True, same_params=same_params)

    parent, restricted = _restrictions(tree)

    def root(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    restricted_roots = {root(name) for name in restricted}
    loose = sorted({table for name, table in used.items() if root(name) not in restricted_roots})
    if loose:
        return Verdict(False, "not restricted to one company_id: " + ", ".join(loose))
    return Verdict(True, same_params=same_params)


def _restrictions(tree: exp.Expr) -> tuple[dict[str, str], set[str]]:
    """From the ANDed conditions of ``tree``: which tables are tied to which by
    ``a.company_id = b.company_id`` (a union-find parent map), and which are restricted to
    one value (``t.company_id = %s`` or ``IN (%s)``)."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    restricted: set[str] = set()
    conditions = [w.this for w in tree.find_all(exp.Where)]
    conditions += [j.args["on"] for j in tree.find_all(exp.Join) if j.args.get("on")]
    conditions += [h.this for h in tree.find_all(exp.Having)]
    for atom in (atom for condition in conditions for atom in _conjuncts(condition)):
        if isinstance(atom, exp.EQ):
            # Django wraps a column on the right in parentheses ("= (b.company_id)").
            left, right = _unparen(atom.left), _unparen(atom.right)
            if _is_company_column(left) and _is_company_column(right):
                a, b = _owner(left), _owner(right)
                if a and b:
                    parent[root(a)] = root(b)
                continue
            for column, value in ((left, right), (right, left)):
                if _is_company_column(column) and _single_value(value):
                    owner = _owner(column)
                    if owner:
                        restricted.add(owner)
        elif isinstance(atom, exp.In) and _is_company_column(atom.this):
            values = atom.expressions
            owner = _owner(atom.this)
            if owner and len(values) == 1 and _single_value(values[0]):
                restricted.add(owner)
    return parent, restricted


def _insert_rows(tree: exp.Insert, target: exp.Expr) -> Verdict:
    """An INSERT of VALUES rows: where each row's ``company_id`` comes from."""
    columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
    if "company_id" not in columns:
        return Verdict(False, "INSERT without company_id")
    position = columns.index("company_id")
    values = tree.expression
    if isinstance(values, exp.Select):
        # INSERT … SELECT: the SELECT's own tables are checked by the caller, so a company_id
        # read from them is one company's. A company_id read from parameter arrays
        # (``unnest(%s::bigint[])``, the ledger's bulk insert) is not checked: a limit.
        return SINGLE
    if not isinstance(values, exp.Values):
        return Verdict(False, "INSERT of rows the check cannot read")
    params: list[int] = []
    literals: set[str] = set()
    index = 0
    for row in values.expressions:
        for number, item in enumerate(row.expressions):
            placeholders = list(item.find_all(exp.Placeholder))
            if number == position:
                if isinstance(item, exp.Placeholder):
                    params.append(index)
                elif isinstance(item, exp.Literal):
                    literals.add(item.this)
                else:
                    return Verdict(False, "INSERT with a computed company_id")
            index += len(placeholders)
    if len(literals) > 1 or (literals and params):
        return Verdict(False, "INSERT rows of several companies")
    return Verdict(True, same_params=tuple(params))


def _params_agree(positions: Sequence[int], params: Any) -> bool:
    if not positions or not isinstance(params, list | tuple):
        return True
    try:
        return len({params[i] for i in positions}) <= 1
    except (IndexError, TypeError):
        return True


# -- the recorder ------------------------------------------------------------------------------


def _is_test_code(path: str) -> bool:
    parts = Path(path).parts
    return "tests" in parts or Path(path).name in ("conftest.py",) or parts[-1].startswith("test_")


@dataclass
class Violation:
    site: str
    sql: str
    why: str


def _classify() -> tuple[str, str] | None:
    """``("system", reason)``, ``("site", call site)``, or None for a test's own statement."""
    from companies.system_jobs import current_system_job
    from companies.tenancy import TenantQuerySet

    reason = current_system_job()
    if reason:
        return ("system", reason)
    frame: FrameType | None = sys._getframe(2)
    site: str | None = None
    while frame is not None:
        this = frame.f_locals.get("self")
        if isinstance(this, TenantQuerySet) and this._unscoped_reason:
            return ("system", this._unscoped_reason)
        filename = frame.f_code.co_filename
        if (
            site is None
            and filename.startswith(str(ROOT))
            and not filename.startswith(_VENV)
            and filename not in _PLUMBING
        ):
            if _is_test_code(filename):
                return None
            relative = os.path.relpath(filename, ROOT)
            site = f"{relative}::{frame.f_code.co_qualname}"
        frame = frame.f_back
    return ("site", site or "<outside the project>")


@dataclass
class Recorder:
    """Counts product statements that would not route to one shard."""

    active: bool = False
    violations: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    system_jobs: Counter[str] = field(default_factory=Counter)
    sink: Path | None = None  # a worker subprocess appends its violations here
    test: str = ""  # the node id of the running test
    first_seen: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self.active:
            self.check(sql, params, many)
        return execute(sql, params, many, context)

    def check(self, sql: str, params: Any, many: bool) -> None:
        verdict = analyse(sql)
        if verdict.single_shard:
            batches = params if many else [params]
            if all(_params_agree(verdict.same_params, p) for p in batches or []):
                return
            verdict = Verdict(False, "INSERT rows of several companies")
        kind = _classify()
        if kind is None:
            return
        with self._lock:
            if kind[0] == "system":
                self.system_jobs[kind[1]] += 1
                return
            key = (kind[1], " ".join(sql.split())[:400], verdict.why)
            self.violations[key] += 1
            self.first_seen.setdefault(key, self.test)
            if self.sink is not None:
                with self.sink.open("a") as out:
                    out.write(json.dumps(key) + "\n")

    def install(self, connection: Any) -> None:
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.insert(0, self)


RECORDER = Recorder()


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    RECORDER.install(connection)


def install_everywhere() -> None:
    """Record on every connection, now and later (threads open their own)."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection_created, dispatch_uid="shard_check")
    for connection in connections.all(initialized_only=True):
        RECORDER.install(connection)


def install_in_worker() -> None:
    """Called in a Celery worker subprocess of the suite: every task statement is product's."""
    path = os.environ.get(RECORD_ENV)
    if not path or _IN_PYTEST:  # pytest's own process records per test (the hooks below)
        return
    RECORDER.sink = Path(path) / f"worker-{os.getpid()}.jsonl"
    RECORDER.active = True
    install_everywhere()


# -- the pytest plugin -------------------------------------------------------------------------


def _enabled(config: pytest.Config) -> bool:
    return os.environ.get("NPS_SHARD_CHECK", "1") != "0" and not hasattr(config, "workerinput")


_IN_PYTEST = False


def pytest_configure(config: pytest.Config) -> None:
    global _IN_PYTEST  # noqa: PLW0603 (one process-wide fact, set once)
    _IN_PYTEST = True
    if not _enabled(config):
        return
    directory = tempfile.mkdtemp(prefix="nps-shards-")
    os.environ[RECORD_ENV] = directory
    config.stash[_DIRECTORY] = Path(directory)


_DIRECTORY = pytest.StashKey[Path]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if _DIRECTORY not in item.config.stash:
        yield
        return
    install_everywhere()
    RECORDER.active = True
    RECORDER.test = item.nodeid
    try:
        yield
    finally:
        RECORDER.active = False


def _load_allowlist() -> set[str]:
    if not ALLOWLIST.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in ALLOWLIST.read_text().splitlines())
    return {line for line in lines if line}


def collected(config: pytest.Config) -> Counter[tuple[str, str, str]]:
    found = Counter(RECORDER.violations)
    directory = config.stash.get(_DIRECTORY, None)
    if directory is not None:
        for path in directory.glob("worker-*.jsonl"):
            for line in path.read_text().splitlines():
                site, sql, why = json.loads(line)
                found[(site, sql, why)] += 1
    return found


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _DIRECTORY not in config.stash:
        return
    found = collected(config)
    allowed = _load_allowlist()
    by_site: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for (site, sql, why), count in found.items():
        by_site[site][(sql, why)] += count
    new = sorted(site for site in by_site if site not in allowed)
    write = terminalreporter.write_line
    report = os.environ.get("NPS_SHARD_REPORT")
    if report:
        Path(report).write_text(
            json.dumps(
                {
                    "sites": {
                        site: [[sql, why, n] for (sql, why), n in c.most_common()]
                        for site, c in by_site.items()
                    },
                    "tests": {
                        site: sorted(
                            {t for (s, _q, _w), t in RECORDER.first_seen.items() if s == site}
                        )
                        for site in by_site
                    },
                    "system_jobs": dict(RECORDER.system_jobs),
                },
                indent=1,
            )
        )
    if not by_site:
        return
    terminalreporter.section("statements that would not route to one Citus shard")
    write(
        f"{len(found)} distinct statements from {len(by_site)} call sites "
        f"({len(new)} not in {ALLOWLIST.name}); system-job statements: "
        f"{sum(RECORDER.system_jobs.values())}"
    )
    for site in sorted(by_site, key=lambda s: (s in allowed, -sum(by_site[s].values()))):
        statements = by_site[site]
        mark = "allowlisted" if site in allowed else "NEW"
        write(f"[{mark}] {site}: {sum(statements.values())} times")
        if site in allowed:
            continue
        for (sql, why), count in statements.most_common(3):
            write(f"    {count}x {why}\n      {sql[:300]}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _DIRECTORY not in session.config.stash:
        return
    found = collected(session.config)
    allowed = _load_allowlist()
    new: dict[str, set[str]] = defaultdict(set)
    for site, _sql, why in found:
        if site not in allowed:
            new[site].update(why.removeprefix("not restricted to one company_id: ").split(", "))
    if new and os.environ.get("NPS_SHARD_ALLOWLIST_ADD") == "1":
        # For merging branches written before the check: their sites join the list once.
        with ALLOWLIST.open("a") as out:
            for site in sorted(new):
                out.write(f"{site}  # {', '.join(sorted(new[site]))}\n")
        return
    if new and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
