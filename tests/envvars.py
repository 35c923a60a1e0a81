"""Which environment variables the project reads, found by reading its source (not by running).

Used by the tests that keep ``.env.example`` and ``docker-compose.yml`` honest.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "nps_saas" / "settings.py"


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def variables_read(path: Path) -> set[str]:
    """Names passed to ``env.<kind>(...)``, ``env(...)``, ``required(...)``, ``os.getenv``,
    ``os.environ.get`` / ``os.environ[...]`` in one module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            reader = (
                (isinstance(func, ast.Name) and func.id in {"env", "required"})
                or (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "env"
                )
                or (
                    isinstance(func, ast.Attribute)
                    and func.attr == "getenv"
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "os"
                )
                or (
                    isinstance(func, ast.Attribute)
                    and func.attr == "get"
                    and _is_os_environ(func.value)
                )
            )
            name = _first_string(node) if reader else None
            if name:
                names.add(name)
        elif (
            isinstance(node, ast.Subscript)
            and _is_os_environ(node.value)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.add(node.slice.value)
    return names


def settings_variables() -> set[str]:
    """Every variable ``nps_saas/settings.py`` reads."""
    return variables_read(SETTINGS)


def project_variables() -> set[str]:
    """Every variable read anywhere in the project's own Python code (tests excluded)."""
    names: set[str] = set()
    for path in ROOT.rglob("*.py"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & {".venv", "node_modules", "var", "tests", "migrations"}:
            continue
        names |= variables_read(path)
    return names


def production_required_variables() -> set[str]:
    """The names settings read through ``required(...)``: production cannot start without them."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "required"
            and (name := _first_string(node))
        ):
            names.add(name)
    return names
