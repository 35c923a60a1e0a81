"""The suite collects every test the repository has: `make test` runs pytest on its
``testpaths``, so an app left out of them has tests that never run (audit, privacy and sso
were, until this test)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_directory_with_tests_is_in_the_testpaths() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    collected = {ROOT / p for p in config["tool"]["pytest"]["ini_options"]["testpaths"]}
    with_tests = {
        path.parent.relative_to(ROOT).parts[0]
        for path in ROOT.glob("*/**/test_*.py")
        if not path.relative_to(ROOT).parts[0].startswith(".")
        and path.relative_to(ROOT).parts[0] not in {"node_modules", "var"}
    }
    missing = sorted(top for top in with_tests if ROOT / top not in collected)
    assert missing == []
