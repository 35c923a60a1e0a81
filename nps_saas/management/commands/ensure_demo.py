"""``manage.py ensure_demo``: the demo company ``make run`` opens with, and its login details.

On the first start it creates "Demo Coffee Co." with an owner (``demo@nps.local``) and a
teammate with the viewer role (``viewer@nps.local``), each with a random password generated
once and kept in ``var/demo-credentials.json``. With the company it creates an active demo
survey and a few demo contacts (``@example.com``, one per survey language), so that the loop
can be tried at once: press Send, open the outbox, answer (nothing is sent by this command);
and a year of made-up history (``nps_saas/demo.py``: more surveys, contacts, invitations and
answers) so that the dashboards have something to show.
On every start it prints the address and the logins. Running it again changes nothing. It
refuses to run when ``NPS_MODE=production``: a login whose password sits in a file has no
place there.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from companies import rls
from companies.models import Company, Industry, Membership, Role, User
from companies.selectors import membership_for, memberships_of_user
from companies.services import company_create, user_create, user_mark_email_verified
from nps_saas.demo import demo_history_create
from surveys.models import SurveyStatus
from surveys.services.contacts import contact_upsert
from surveys.services.surveys import survey_create, survey_set_status

DEMO_COMPANY_NAME = "Demo Coffee Co."
DEMO_TIME_ZONE = "Europe/Amsterdam"
DEMO_COUNTRY = "NL"
DEMO_SURVEY_NAME = "After your visit"
# (email, name, language): example.com never receives mail; one person per survey language.
DEMO_CONTACTS = (
    ("anna@example.com", "Anna de Vries", "en"),
    ("ivan@example.com", "Иван Петров", "ru"),
    ("aigerim@example.com", "Айгерим Серікқызы", "kk"),
)
OWNER_EMAIL = "demo@nps.local"
VIEWER_EMAIL = "viewer@nps.local"


@dataclass
class DemoCredentials:
    owner_email: str
    owner_password: str
    viewer_email: str
    viewer_password: str
    company_slug: str = ""


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


def _new_password(email: str) -> str:
    """16 URL-safe characters (96 bits), easy to copy, that the password validators accept.

    A draw can resemble the login's email closely enough for the similarity validator (rare,
    but it failed a first start): such a draw is thrown away.
    """
    while True:
        password = secrets.token_urlsafe(12)
        try:
            validate_password(password, User(email=email))
        except ValidationError:
            continue
        return password


def load_credentials(path: Path) -> DemoCredentials | None:
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return DemoCredentials(**data)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"{path} is not a demo credentials file ({exc}); delete it") from exc


def save_credentials(path: Path, credentials: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written readable by this user only: it holds passwords.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(credentials), handle, indent=2)
        handle.write("\n")


def site_address() -> str:
    return f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"


class Command(BaseCommand):
    help = "Create the demo company and its logins on first start; print the address and logins."

    def handle(self, *args: Any, **options: Any) -> None:
        # An operator's command is a system job for row-level security (companies.rls).
        with rls.system(reason="the demo company is set up by the system"):
            self._handle(*args, **options)

    def _handle(self, *args: Any, **options: Any) -> None:
        if settings.NPS_MODE == settings.PRODUCTION:
            raise CommandError(
                "ensure_demo creates logins whose passwords are stored in a file; "
                "it does not run when NPS_MODE=production."
            )
        path = credentials_path()
        credentials = load_credentials(path)
        fresh_file = credentials is None
        if credentials is None:
            credentials = DemoCredentials(
                owner_email=OWNER_EMAIL,
                owner_password=_new_password(OWNER_EMAIL),
                viewer_email=VIEWER_EMAIL,
                viewer_password=_new_password(VIEWER_EMAIL),
            )
            # Stored before any row is written, so that a start that fails half-way is
            # finished by the next one with the same passwords.
            save_credentials(path, credentials)
        try:
            with transaction.atomic():
                owner = self._ensure_user(
                    credentials.owner_email, credentials.owner_password, reset=fresh_file
                )
                company, created = self._ensure_company(owner, credentials.company_slug)
                viewer = self._ensure_user(
                    credentials.viewer_email, credentials.viewer_password, reset=fresh_file
                )
                self._ensure_member(company, viewer, Role.VIEWER)
                if created:
                    self._seed(company, owner)
        except ValidationError as exc:
            raise CommandError(f"could not create the demo company: {exc}") from exc
        if credentials.company_slug != company.slug:
            credentials.company_slug = company.slug
            save_credentials(path, credentials)
        self._print_box(company, credentials, created=created)

    def _ensure_user(self, email: str, password: str, *, reset: bool) -> User:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = user_create(email=email, password=password)
            user_mark_email_verified(user=user)
        elif reset:
            # The database outlived the credentials file: the old password is unknown, so the
            # demo login gets the new one that has just been stored and is about to be printed.
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _ensure_company(self, owner: User, slug: str) -> tuple[Company, bool]:
        owned = [m for m in memberships_of_user(user=owner) if m.role == Role.OWNER]
        for membership in owned:
            if membership.company.slug == slug:
                return membership.company, False
        for membership in owned:
            if membership.company.name == DEMO_COMPANY_NAME:
                return membership.company, False
        company = company_create(
            name=DEMO_COMPANY_NAME,
            owner=owner,
            industry=Industry.RETAIL,
            time_zone=DEMO_TIME_ZONE,
            country=DEMO_COUNTRY,
        )
        return company, True

    @staticmethod
    def _seed(company: Company, owner: User) -> None:
        """An active survey and some contacts in the new demo company; only at its creation,
        so that what the developer deletes or changes later stays that way."""
        survey = survey_create(company=company, name=DEMO_SURVEY_NAME, created_by=owner)
        survey_set_status(company=company, survey=survey, status=SurveyStatus.ACTIVE)
        for email, name, language in DEMO_CONTACTS:
            contact_upsert(company=company, email=email, name=name, language=language)
        # A year of answers, so that the first dashboard a newcomer opens is alive.
        demo_history_create(company=company, owner=owner, visit_survey=survey)

    @staticmethod
    def _ensure_member(company: Company, user: User, role: str) -> None:
        if membership_for(user=user, company_slug=company.slug) is not None:
            return
        # companies.services has no "add a member directly" service (people join through an
        # invitation, whose email would point at an already used link here); this mirrors
        # what team_invite_accept writes, minus the invitation.
        Membership.objects.create(company=company, user=user, role=role)

    def _print_box(self, company: Company, credentials: DemoCredentials, *, created: bool) -> None:
        address = site_address()
        lines = [
            f"nps_saas (embedded) - open {address}/",
            "",
            f"Owner login:   {credentials.owner_email}",
            f"Password:      {credentials.owner_password}",
            f"Viewer login:  {credentials.viewer_email}",
            f"Password:      {credentials.viewer_password}",
            "",
            f"Demo company:  {company.name} -> {address}/c/{company.slug}/",
            f"Surveys:       {address}/c/{company.slug}/surveys/  (open one, press Send)",
            f"Dev outbox:    {address}/dev/outbox/  (mail and SMS land here)",
            f"API docs:      {address}/api/docs/",
            f"Logins saved in {credentials_path()}",
        ]
        if created:
            lines.insert(0, "Created the demo company on this first start.")
        width = max(len(line) for line in lines)
        border = "+" + "-" * (width + 2) + "+"
        self.stdout.write(border)
        for line in lines:
            self.stdout.write(f"| {line.ljust(width)} |")
        self.stdout.write(border)
