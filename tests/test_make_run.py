"""What ``make run`` does, end to end: migrate, ensure_demo, run_embedded on a free port.

Runs with an environment that names no service at all (no DATABASE_URL, REDIS_URL, broker):
the embedded default must serve, log the printed demo login in, and run periodic work.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, OpenerDirector, Request, build_opener

import pytest
from django.conf import settings

from tests.waits import WAIT_SECONDS

START_TIMEOUT = 30.0


@dataclass
class Served:
    base_url: str
    banner: str
    var_dir: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 (our interpreter, our arguments)
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    var_dir = tmp_path_factory.mktemp("make-run") / "var"
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(var_dir.parent),
        "NPS_MODE": "embedded",
        "NPS_VAR_DIR": str(var_dir),
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    manage("migrate", "--no-input", env=env)
    banner = manage("ensure_demo", env=env).stdout
    log_path = var_dir / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "run_embedded", f"127.0.0.1:{port}"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"run_embedded exited early:\n{log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nothing listened on {port}:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield Served(base_url=f"http://127.0.0.1:{port}", banner=banner, var_dir=var_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def browser() -> OpenerDirector:
    return build_opener(HTTPCookieProcessor(CookieJar()))


def printed(banner: str, label: str) -> list[str]:
    return re.findall(rf"\| {label}:\s+(\S+)", banner)


def test_the_banner_prints_the_address_and_the_logins(served: Served) -> None:
    assert f"{served.base_url}/" in served.banner
    assert printed(served.banner, "Owner login") == ["demo@nps.local"]
    stored = json.loads((served.var_dir / "demo-credentials.json").read_text())
    assert printed(served.banner, "Password") == [
        stored["owner_password"],
        stored["viewer_password"],
    ]
    # The SQLite database lives in the var directory, not in a service.
    assert (served.var_dir / "nps_saas.sqlite3").exists()


def test_the_printed_login_opens_the_demo_company(served: Served) -> None:
    opener = browser()
    with opener.open(f"{served.base_url}/accounts/login/", timeout=10) as response:
        assert response.status == 200
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "the login form carries a CSRF token"

    email = printed(served.banner, "Owner login")[0]
    password = printed(served.banner, "Password")[0]
    form = urlencode({"login": email, "password": password, "csrfmiddlewaretoken": token[1]})
    request = Request(f"{served.base_url}/accounts/login/", data=form.encode(), method="POST")  # noqa: S310
    with opener.open(request, timeout=10) as response:
        assert response.status == 200
        landed = response.geturl()
        body = response.read().decode()

    slug = json.loads((served.var_dir / "demo-credentials.json").read_text())["company_slug"]
    assert landed == f"{served.base_url}/c/{slug}/"
    assert "Demo Coffee Co." in body


def test_a_wrong_password_does_not_log_in(served: Served) -> None:
    opener = browser()
    with opener.open(f"{served.base_url}/accounts/login/", timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode())
    assert token
    form = urlencode(
        {"login": "demo@nps.local", "password": "not-the-password", "csrfmiddlewaretoken": token[1]}
    )
    request = Request(f"{served.base_url}/accounts/login/", data=form.encode(), method="POST")  # noqa: S310
    with opener.open(request, timeout=10) as response:
        assert response.geturl() == f"{served.base_url}/accounts/login/"


def test_health_is_ok_without_services_and_the_scheduler_has_run(served: Served) -> None:
    deadline = time.monotonic() + 10
    while True:
        with browser().open(f"{served.base_url}/healthz", timeout=10) as response:
            assert response.status == 200
            health = json.loads(response.read())
        if health["scheduler"]["last_beat"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert health["status"] == "ok"
    assert health["checks"]["database"]["ok"] is True
    assert "redis" not in health["checks"]  # the embedded default has no Redis to check
    # The embedded scheduler ran the heartbeat task inside the server process.
    assert health["scheduler"]["last_beat"] is not None
