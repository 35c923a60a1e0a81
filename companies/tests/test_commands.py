"""The command-line contract: create_company and create_api_key.

* ``create_company --name --owner-email --password [--industry] [--timezone]``: the last line
  of stdout is the company slug;
* ``create_api_key --company SLUG [--name]``: the key alone on the last line;
* bad input: one line on stderr, exit status 1, nothing created.

In-process tests (call_command) check the outcomes; the subprocess tests check the real
process: exit codes, stdout/stderr, against the committed test database.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse

from companies.models import ApiKey, Company, Membership, Role, User
from conftest import PASSWORD, make_user
from tests.waits import WAIT_SECONDS

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """In-process only: the subprocesses keep the real hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run(*args: str) -> list[str]:
    """call_command; return stdout's lines."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def create_company_args(**overrides: str) -> list[str]:
    options = {
        "--name": "Acme Coffee",
        "--owner-email": "boss@acme.test",
        "--password": PASSWORD,
    }
    options.update(overrides)
    args = ["create_company"]
    for option, value in options.items():
        args += [option, value]
    return args


def counts() -> tuple[int, int, int, int]:
    return (
        Company.objects.count(),
        User.objects.count(),
        Membership.objects.unscoped(reason="test: count everything").count(),
        ApiKey.objects.unscoped(reason="test: count everything").count(),
    )


def assert_one_line(exc: CommandError) -> str:
    message = str(exc)
    assert message.strip()
    assert "\n" not in message
    return message


# --- create_company, in process -----------------------------------------------------------------


@pytest.mark.django_db
def test_create_company_prints_the_slug_last():
    lines = run(*create_company_args(**{"--industry": "software", "--timezone": "Asia/Almaty"}))
    slug = lines[-1]
    company = Company.objects.get(slug=slug)
    assert company.name == "Acme Coffee"
    assert company.industry == "software"
    assert company.time_zone == "Asia/Almaty"
    owner = User.objects.get(email="boss@acme.test")
    assert owner.check_password(PASSWORD)
    assert Membership.objects.for_company(company).get().user == owner
    assert Membership.objects.for_company(company).get().role == Role.OWNER
    assert EmailAddress.objects.get(user=owner).verified


@pytest.mark.django_db
def test_create_company_defaults():
    slug = run(*create_company_args())[-1]
    company = Company.objects.get(slug=slug)
    assert company.industry == "other"
    assert company.time_zone == "UTC"


@pytest.mark.django_db
def test_created_owner_can_log_in_and_open_the_company():
    slug = run(*create_company_args())[-1]
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": "boss@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    overview = reverse("companies:overview", kwargs={"company_slug": slug})
    assert client.get(overview).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"--owner-email": "not-an-email"}, "valid email"),
        ({"--password": "short"}, "too short"),
        ({"--password": "password"}, "too common"),
        ({"--industry": "mining"}, "Unknown industry"),
        ({"--timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"--name": "   "}, "company name"),
        ({"--name": "x" * 200}, "company name"),
    ],
)
def test_create_company_bad_input_creates_nothing(overrides, fragment):
    before = counts()
    with pytest.raises(CommandError) as caught:
        run(*create_company_args(**overrides))
    assert fragment in assert_one_line(caught.value)
    assert counts() == before


@pytest.mark.django_db
def test_create_company_duplicate_email_creates_nothing():
    make_user("boss@acme.test")
    before = counts()
    with pytest.raises(CommandError) as caught:
        run(*create_company_args(**{"--owner-email": "BOSS@acme.test"}))
    assert "already exists" in assert_one_line(caught.value)
    assert counts() == before


@pytest.mark.django_db
def test_several_password_problems_stay_on_one_line():
    with pytest.raises(CommandError) as caught:
        run(*create_company_args(**{"--password": "1234"}))
    message = assert_one_line(caught.value)
    assert "too short" in message
    assert "numeric" in message


# --- create_api_key, in process -----------------------------------------------------------------


@pytest.mark.django_db
def test_create_api_key_prints_the_key_last_and_it_works(company):
    lines = run("create_api_key", "--company", company.slug, "--name", "Zapier")
    key = lines[-1]
    assert key.startswith("nps_")
    assert " " not in key
    api_key = ApiKey.objects.for_company(company).get()
    assert api_key.name == "Zapier"
    assert api_key.role == Role.ADMIN
    assert api_key.created_by is None
    response = Client().get(reverse("api-company"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert response.json()["slug"] == company.slug


@pytest.mark.django_db
def test_create_api_key_default_name_and_read_only(company):
    key = run("create_api_key", "--company", company.slug, "--read-only")[-1]
    api_key = ApiKey.objects.for_company(company).get()
    assert api_key.name
    assert api_key.role == Role.VIEWER
    assert key.startswith(f"nps_{api_key.prefix}_")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--company", "no-such-company"], "Unknown company"),
        (["--company", "COMPANY", "--name", "   "], "name"),
        (["--company", "COMPANY", "--name", "n" * 81], "name"),
    ],
)
def test_create_api_key_bad_input_creates_nothing(company, args, fragment):
    args = [company.slug if a == "COMPANY" else a for a in args]
    before = counts()
    with pytest.raises(CommandError) as caught:
        run("create_api_key", *args)
    assert fragment in assert_one_line(caught.value)
    assert counts() == before


# --- The real processes -------------------------------------------------------------------------


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py against this test's database (committed rows: transactional_db)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    url = f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "NPS_MODE": "test", "DATABASE_URL": url}
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )


def test_cli_contract_as_real_processes(transactional_db):
    created = manage(*create_company_args(**{"--industry": "retail"}))
    assert created.returncode == 0, created.stderr
    slug = created.stdout.strip().splitlines()[-1]
    company = Company.objects.get(slug=slug)
    assert company.industry == "retail"

    issued = manage("create_api_key", "--company", slug, "--name", "from a script")
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip().splitlines()[-1]
    response = Client().get(reverse("api-company"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert response.json()["slug"] == slug

    before = counts()
    for args, fragment in [
        (create_company_args(**{"--name": "Other"}), "already exists"),  # duplicate email
        (create_company_args(**{"--owner-email": "x@acme.test", "--password": "123"}), "short"),
        (["create_api_key", "--company", "no-such-company"], "Unknown company"),
    ]:
        failed = manage(*args)
        assert failed.returncode == 1, (args, failed.stdout, failed.stderr)
        error_lines = failed.stderr.strip().splitlines()
        assert len(error_lines) == 1, failed.stderr
        assert error_lines[0].startswith("CommandError: ")
        assert fragment in error_lines[0]
    assert counts() == before
