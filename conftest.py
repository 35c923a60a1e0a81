"""Fixtures shared by every app's tests: companies, people in every role, API keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from companies.models import ApiKey, Company, Membership, Role, User
from companies.services import api_key_create, company_create, user_create, user_mark_email_verified
from tests.database_role import (  # noqa: F401 (an autouse fixture, registered by importing it)
    _test_code_runs_as_a_system_job_again,
    connected_as_app_role,
)

# Records every statement the product sends and fails on any that would not route to one
# Citus shard (docs/scaling.md).
pytest_plugins = ["tests.shard_check"]

PASSWORD = "correct-horse-battery-9"  # noqa: S105


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, then row-level security binding (tests/database_role.py)."""
    with django_db_blocker.unblock(), connected_as_app_role():
        yield


@dataclass
class Persona:
    user: User
    company: Company
    role: str
    client: Client


def make_user(email: str) -> User:
    user = user_create(email=email, password=PASSWORD)
    user_mark_email_verified(user=user)
    return user


def make_company(name: str, owner_email: str) -> Company:
    return company_create(name=name, owner=make_user(owner_email), industry="retail")


def add_member(company: Company, email: str, role: str) -> User:
    user = make_user(email)
    Membership.objects.create(company=company, user=user, role=role)
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def company(db: None) -> Company:
    return make_company("Acme Coffee", "owner@acme.test")


@pytest.fixture
def other_company(db: None) -> Company:
    return make_company("Globex Tea", "owner@globex.test")


@pytest.fixture
def owner(company: Company) -> Persona:
    user = Membership.objects.for_company(company).get(role=Role.OWNER).user
    return Persona(user=user, company=company, role=Role.OWNER, client=logged_in(user))


@pytest.fixture
def personas(company: Company, owner: Persona) -> dict[str, Persona]:
    """One logged-in person per role in ``company``."""
    people = {Role.OWNER.value: owner}
    for role in (Role.ADMIN, Role.MANAGER, Role.AGENT, Role.VIEWER):
        user = add_member(company, f"{role}@acme.test", role)
        people[role.value] = Persona(user=user, company=company, role=role, client=logged_in(user))
    return people


@pytest.fixture
def viewer(personas: dict[str, Persona]) -> Persona:
    return personas[Role.VIEWER]


@pytest.fixture
def outsider(other_company: Company) -> Persona:
    """The owner of another company: must never see or touch ``company``'s data."""
    user = Membership.objects.for_company(other_company).get(role=Role.OWNER).user
    return Persona(user=user, company=other_company, role=Role.OWNER, client=logged_in(user))


@dataclass
class KeyPersona:
    key: str
    api_key: ApiKey
    company: Company

    @property
    def headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.key}"}


@pytest.fixture
def api_owner(company: Company) -> KeyPersona:
    issued = api_key_create(company=company, name="full")
    return KeyPersona(key=issued.key, api_key=issued.api_key, company=company)


@pytest.fixture
def api_viewer(company: Company) -> KeyPersona:
    issued = api_key_create(company=company, name="read only", role=Role.VIEWER)
    return KeyPersona(key=issued.key, api_key=issued.api_key, company=company)


@pytest.fixture
def api_outsider(other_company: Company) -> KeyPersona:
    issued = api_key_create(company=other_company, name="theirs")
    return KeyPersona(key=issued.key, api_key=issued.api_key, company=other_company)
