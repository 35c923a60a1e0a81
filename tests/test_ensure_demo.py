"""manage.py ensure_demo: the demo company and logins that make run prints."""

from __future__ import annotations

import json
import secrets
import stat
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings as SettingsWrapper

from companies.models import Company, Membership, Role, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings: SettingsWrapper, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path
    return tmp_path


def ensure_demo(monkeypatch: pytest.MonkeyPatch, port: str = "8123") -> str:
    monkeypatch.setenv("PORT", port)
    out = StringIO()
    call_command("ensure_demo", stdout=out)
    return out.getvalue()


def demo_companies() -> list[Company]:
    return list(Company.objects.filter(name="Demo Coffee Co."))


def test_first_start_creates_the_demo_company_and_prints_working_logins(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = ensure_demo(monkeypatch)

    [company] = demo_companies()
    assert company.industry == "retail"
    assert company.time_zone not in ("", "UTC")
    stored = json.loads((var_dir / "demo-credentials.json").read_text())
    assert stored["company_slug"] == company.slug
    owner = authenticate(email="demo@nps.local", password=stored["owner_password"])
    viewer = authenticate(email=stored["viewer_email"], password=stored["viewer_password"])
    assert isinstance(owner, User)
    assert isinstance(viewer, User)
    roles = dict(Membership.objects.for_company(company).values_list("user__email", "role"))
    assert roles == {"demo@nps.local": Role.OWNER, stored["viewer_email"]: Role.VIEWER}
    # Both can log in without the email verification step.
    assert owner.emailaddress_set.get().verified  # type: ignore[attr-defined]
    assert viewer.emailaddress_set.get().verified  # type: ignore[attr-defined]

    assert "http://127.0.0.1:8123/" in output
    assert stored["owner_password"] in output
    assert stored["viewer_password"] in output
    assert f"/c/{company.slug}/" in output
    lines = output.strip().splitlines()
    assert lines[0].startswith("+--")
    assert lines[-1] == lines[0]
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[1:-1])
    # Only this user may read the passwords.
    mode = stat.S_IMODE((var_dir / "demo-credentials.json").stat().st_mode)
    assert mode == 0o600


def test_later_starts_change_nothing_and_print_the_same_logins(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_demo(monkeypatch)
    first = (var_dir / "demo-credentials.json").read_text()
    users = User.objects.count()

    output = ensure_demo(monkeypatch, port="9001")

    assert (var_dir / "demo-credentials.json").read_text() == first
    assert len(demo_companies()) == 1
    assert User.objects.count() == users
    assert "http://127.0.0.1:9001/" in output
    assert json.loads(first)["owner_password"] in output
    assert "Created" not in output


def test_passwords_are_random_per_installation(
    settings: SettingsWrapper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VAR_DIR = tmp_path / "one"
    ensure_demo(monkeypatch)
    one = json.loads((tmp_path / "one" / "demo-credentials.json").read_text())
    User.objects.filter(email__endswith="@nps.local").delete()
    settings.VAR_DIR = tmp_path / "two"
    ensure_demo(monkeypatch)
    two = json.loads((tmp_path / "two" / "demo-credentials.json").read_text())

    assert one["owner_password"] != two["owner_password"]
    assert one["viewer_password"] != two["viewer_password"]
    assert len(one["owner_password"]) >= 16


def test_a_random_password_the_validators_refuse_is_drawn_again(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One in many thousand draws resembles "demo@nps.local" closely enough for Django's
    # similarity check: the first start then failed with "too similar to the email address".
    draws = ["Demo-nps-local-x", "Xq7-Lk2vPz9wRt4M", "Hb3-Nc8yTs6uWe1K"]
    real = secrets.token_urlsafe
    # The next draws are these; later ones (public ids of the company) are random again.
    monkeypatch.setattr("secrets.token_urlsafe", lambda n=None: draws.pop(0) if draws else real(n))
    ensure_demo(monkeypatch)
    stored = json.loads((var_dir / "demo-credentials.json").read_text())
    assert stored["owner_password"] == "Xq7-Lk2vPz9wRt4M"
    assert stored["viewer_password"] == "Hb3-Nc8yTs6uWe1K"
    assert authenticate(email="demo@nps.local", password=stored["owner_password"])


def test_a_lost_credentials_file_gets_new_passwords_that_work(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_demo(monkeypatch)
    path = var_dir / "demo-credentials.json"
    old = json.loads(path.read_text())
    path.unlink()

    ensure_demo(monkeypatch)

    new = json.loads(path.read_text())
    assert new["owner_password"] != old["owner_password"]
    assert authenticate(email="demo@nps.local", password=old["owner_password"]) is None
    assert authenticate(email="demo@nps.local", password=new["owner_password"]) is not None
    assert new["company_slug"] == old["company_slug"]
    assert len(demo_companies()) == 1


def test_a_damaged_credentials_file_is_a_clear_error(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (var_dir / "demo-credentials.json").write_text("{not json")
    with pytest.raises(CommandError, match=r"demo-credentials\.json.*delete it"):
        ensure_demo(monkeypatch)
    assert demo_companies() == []


def test_refuses_to_run_in_production(
    var_dir: Path, settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.NPS_MODE = "production"
    with pytest.raises(CommandError, match="NPS_MODE=production"):
        ensure_demo(monkeypatch)
    assert demo_companies() == []
    assert not (var_dir / "demo-credentials.json").exists()


def test_the_demo_company_has_an_active_survey_and_contacts_to_try_the_loop(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifications.models import OutboxMessage
    from surveys.models import Contact, Invitation, InvitationStatus, Survey, SurveyStatus

    output = ensure_demo(monkeypatch)
    [company] = demo_companies()
    survey = Survey.objects.for_company(company).get(name="After your visit")
    assert survey.status == SurveyStatus.ACTIVE
    contacts = Contact.objects.for_company(company)
    people = contacts.filter(
        email__in=["anna@example.com", "ivan@example.com", "aigerim@example.com"]
    )
    assert sorted(people.values_list("language", flat=True)) == ["en", "kk", "ru"]
    assert not contacts.exclude(email__endswith="@example.com").exists()
    assert f"/c/{company.slug}/surveys/" in output
    # Nothing is sent by the command itself: the history's invitations all went out before.
    waiting = Invitation.objects.for_company(company).exclude(status=InvitationStatus.SENT)
    assert not waiting.exists()
    assert not OutboxMessage.objects.exists()

    # Later starts add nothing, and what the developer removed stays removed.
    counts = (Survey.objects.for_company(company).count(), contacts.count())
    ensure_demo(monkeypatch)
    assert (Survey.objects.for_company(company).count(), contacts.count()) == counts
    survey.delete()
    people.first().delete()  # type: ignore[union-attr]
    ensure_demo(monkeypatch)
    assert not Survey.objects.for_company(company).filter(name="After your visit").exists()
    assert contacts.count() == counts[1] - 1


def test_the_demo_company_has_a_year_of_answers_for_its_dashboards(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboards.metrics import nps_summary
    from responses.models import Response
    from responses.selectors import score_counts
    from surveys.models import Survey, SurveyKind

    ensure_demo(monkeypatch)
    [company] = demo_companies()
    answers = Response.objects.for_company(company)
    assert answers.count() > 1500
    first, last = (answers.order_by(field).first() for field in ("created_at", "-created_at"))
    assert first is not None
    assert last is not None
    assert (last.created_at - first.created_at).days >= 330
    surveys = Survey.objects.for_company(company)
    assert surveys.count() == 3
    assert surveys.filter(kind=SurveyKind.ENPS, anonymous=True).exists()
    assert set(answers.values_list("channel", flat=True)) == {"email", "sms", "link"}
    # Anonymous answers name nobody; the others segment by the contact's city.
    assert not answers.filter(survey__anonymous=True, contact__isnull=False).exists()
    cities = set(answers.values_list("contact_properties__city", flat=True)) - {None}
    assert len(cities) >= 5
    comments = " ".join(answers.exclude(comment="").values_list("comment", flat=True)[:2000])
    assert "coffee" in comments.lower()
    assert "кофе" in comments  # Russian
    assert any(letter in comments for letter in "әғқңөұүі")  # Kazakh
    # The NPS climbs through the year: the last quarter beats the first.
    early = nps_summary(score_counts(company=company, until=first.created_at + timedelta(days=90)))
    late = nps_summary(score_counts(company=company, since=last.created_at - timedelta(days=90)))
    assert early["nps"] is not None
    assert late["nps"] is not None
    assert late["nps"] > early["nps"] + 10
    # The triage inbox has work in it: follow-ups on the latest detractors, some handled.
    from responses.models import Followup

    followups = Followup.objects.for_company(company)
    assert followups.count() == 12
    assert set(followups.values_list("status", flat=True)) == {"new", "in_progress", "resolved"}
    assert not followups.exclude(response__category="detractor").exists()


# Written out here rather than read from nps_saas.demo, so that the check does not depend on
# the tables it checks.
KAZAKH_WOMEN = {"Айгерим", "Гүлнар", "Аружан", "Әлия"}


def _is_female_surname(language: str, surname: str) -> bool:
    if language == "kk":
        return surname.endswith(("қызы", "ова", "ева"))
    return surname.endswith("а")  # Петрова, Соколова


def test_demo_names_agree_in_gender(var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "Алексей Соколова": a man's first name with a woman's surname.
    from surveys.models import Contact

    ensure_demo(monkeypatch)
    [company] = demo_companies()
    people = Contact.objects.for_company(company).filter(language__in=["ru", "kk"])
    checked = 0
    for language, name in people.values_list("language", "name"):
        first, surname = name.split(" ", 1)
        female = first in KAZAKH_WOMEN if language == "kk" else first.endswith(("а", "я"))
        assert _is_female_surname(language, surname) == female, name
        checked += 1
    assert checked >= 20
