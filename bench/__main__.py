"""``make bench``: run every benchmark module in bench/ (or those named on the command line)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

# The issue names benchmarks by what they measure; some of those names are Python keywords
# (``import``) and cannot be module names, so they map to the module that measures it.
ALIASES = {"import": "contact_import"}
# Not benchmarks: run on their own (``faults``: ``make faults``, a whole stack for many minutes).
EXCLUDED = {"faults"}


def main(argv: list[str]) -> int:
    names = argv or sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not info.name.startswith("_") and info.name not in EXCLUDED
    )
    for given in names:
        name = ALIASES.get(given, given)
        print(f"== bench.{name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
