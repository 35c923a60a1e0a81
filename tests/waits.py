"""The one setting for how long a test waits for a subprocess, a worker or a service.

Generous by default (CI runs on 2 busy cores); a test never depends on speed, only on the
thing happening within this time. ``TEST_WAIT_SECONDS`` overrides it.
"""

from __future__ import annotations

import os

WAIT_SECONDS = float(os.environ.get("TEST_WAIT_SECONDS", "180"))
