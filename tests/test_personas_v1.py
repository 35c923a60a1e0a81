"""Every route of Delighted's API under /v1/, three API-key personas (HTTP Basic, the key as
the user name): the key's company is the only scope.

* no key, a wrong or a revoked one → 401 with ``WWW-Authenticate: Basic realm="Delighted"``;
* a full-access key of ``company`` (api_owner) reads;
* a full-access key of ``other_company`` (api_outsider) gets 404 for ``company``'s objects,
  changes nothing, and sees none of ``company``'s identifying values in lists;
* a read-only key of ``company`` (api_viewer) gets 403 on every write and changes nothing.

Routes come from the URL resolver; objects in URLs from tests/personas.py's registry.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from django.apps import apps
from django.test import Client

from companies.models import Company
from companies.services import api_key_create, api_key_revoke
from conftest import KeyPersona
from delighted_compat.api.base import DelightedAPIView, NotFoundApi
from delighted_compat.api.services import default_survey_ensure
from notifications.models import Suppression
from responses.models import Response
from surveys.models import Contact
from surveys.services.autopilot import autopilot_configure, autopilot_member_add
from tests.personas import (
    VOLATILE_FIELDS,
    Route,
    db_snapshot,
    object_kwargs,
    seed_company,
    snapshot_diff,
    walk_routes,
)

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

pytestmark = pytest.mark.django_db

ALL_V1_ROUTES = [r for r in walk_routes() if r.is_delighted_api]
V1_ROUTES = [r for r in ALL_V1_ROUTES if r.view_class is not NotFoundApi]
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
METHOD_ORDER = ("GET", *WRITE_METHODS)
# Valid enough to change something if a guard were missing (the tests assert nothing did).
PAYLOAD = {
    "email": "intruder@evil.test",
    "person_email": "intruder@evil.test",
    "name": "Intruder",
    "score": 0,
    "comment": "taken over",
    "send": False,
}


def _label(route: Route) -> str:
    return route.label


def allowed_methods(route: Route) -> list[str]:
    cls = route.view_class
    assert cls is not None
    names = [m for m in cls.http_method_names if hasattr(cls, m)]  # type: ignore[attr-defined]
    methods = {m.upper() for m in names} - {"OPTIONS", "HEAD", "TRACE"}
    return sorted(methods, key=METHOD_ORDER.index)


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(key.encode()).decode()


def _call(
    method: str, url: str, persona: KeyPersona | None = None, authorization: str | None = None
) -> _MonkeyPatchedWSGIResponse:
    extra: dict[str, Any] = {}
    if persona is not None:
        extra["HTTP_AUTHORIZATION"] = basic(persona.key)
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    client = Client(raise_request_exception=False)
    return client.generic(
        method, url, data=json.dumps(PAYLOAD), content_type="application/json", **extra
    )


def _status(response: _MonkeyPatchedWSGIResponse) -> int | None:
    try:
        return int(response.json()["status"])
    except (ValueError, KeyError, TypeError):
        return None


def _url(route: Route, company: Company) -> str:
    return route.path(object_kwargs(route, company))


def _seed_autopilot(company: Company, contact: Contact, marker: str) -> None:
    """The API survey's recurring programmes (email, SMS), with ``contact`` in both."""
    survey = default_survey_ensure(company=company)
    for channel in ("email", "sms"):
        autopilot_configure(
            company=company,
            survey=survey,
            channel=channel,
            active=True,
            cadence_days=90,
            first_delay_days=0,
        )
        autopilot_member_add(
            company=company,
            survey=survey,
            channel=channel,
            contact=contact,
            properties={"marker": marker},
        )


def _seed_v1(company: Company) -> set[str]:
    """People, an answer in the API's survey, an unsubscribe and recurring programmes with a
    member: what /v1/ lists show."""
    values = seed_company(company)
    contact = Contact.objects.create(
        company=company,
        email="seeded-person@acme-v1.test",
        name="Seeded Person",
        phone="+77011234599",
    )
    _seed_autopilot(company, contact, "seeded-autopilot-v1")
    response = Response.objects.create(
        company=company,
        survey=default_survey_ensure(company=company),
        contact=contact,
        score=2,
        category="detractor",
        comment="seeded-comment-v1",
        channel="link",
    )
    Suppression.objects.create(
        company=company, channel="email", address="seeded-gone@acme-v1.test", reason="bounced"
    )
    Suppression.objects.create(
        company=company, channel="email", address="seeded-left@acme-v1.test", reason="unsubscribed"
    )
    return values | {
        contact.public_id,
        "seeded-person@acme-v1.test",
        response.public_id,
        "seeded-comment-v1",
        "seeded-gone@acme-v1.test",
        "seeded-left@acme-v1.test",
        "seeded-autopilot-v1",
        "+77011234599",
    }


def _company_rows(company: Company) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``company`` in the project's tenant tables (other companies' may change)."""
    snapshot = {}
    for label, rows in db_snapshot().items():
        model = apps.get_model(label)
        if label == "companies.Company":
            snapshot[label] = [row for row in rows if row[0] == company.pk]
        elif any(f.attname == "company_id" for f in model._meta.concrete_fields):
            index = [
                f.attname for f in model._meta.concrete_fields if f.name not in VOLATILE_FIELDS
            ].index("company_id")
            snapshot[label] = [row for row in rows if row[index] == company.pk]
    return snapshot


def test_walker_sees_the_v1_routes() -> None:
    names = {r.name for r in V1_ROUTES}
    assert {"v1-people", "v1-person", "v1-responses", "v1-metrics", "v1-bounces"} <= names
    assert {"v1-autopilot-email", "v1-autopilot-sms-memberships"} <= names


@pytest.mark.parametrize("route", V1_ROUTES, ids=_label)
def test_v1_view_is_a_delighted_view(route: Route) -> None:
    cls = route.view_class
    assert cls is not None
    assert issubclass(cls, DelightedAPIView), f"{route.route}: inherit DelightedAPIView"


@pytest.mark.parametrize("method", METHOD_ORDER)
def test_unknown_v1_paths_are_404_for_everyone(
    method: str, company: Company, api_owner: KeyPersona
) -> None:
    ours = seed_company(company)
    for persona in (None, api_owner):
        response = _call(method, "/v1/nothing/here", persona)
        assert response.status_code == 404
        assert _status(response) == 404
        assert not [v for v in ours if v in response.content.decode()]


@pytest.mark.parametrize("route", V1_ROUTES, ids=_label)
def test_v1_refuses_requests_without_a_valid_key(route: Route, company: Company) -> None:
    url = _url(route, company)
    revoked = api_key_create(company=company, name="revoked")
    api_key_revoke(company=company, api_key=revoked.api_key)
    problems = []
    for method in sorted({"GET", *allowed_methods(route)}, key=METHOD_ORDER.index):
        for label, authorization in (
            ("no key", None),
            ("unknown key", basic("nps_00000000_not-a-real-key")),
            ("bearer", f"Bearer {revoked.key}"),
            ("revoked key", basic(revoked.key)),
        ):
            before = db_snapshot()
            response = _call(method, url, authorization=authorization)
            if (
                response.status_code != 401
                or _status(response) != 401
                or response.get("WWW-Authenticate") != 'Basic realm="Delighted"'
            ):
                problems.append(f"{label}: {method} {url} → {response.status_code}")
            if snapshot_diff(before, db_snapshot()):
                problems.append(f"{label}: {method} {url} changed the database")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("route", V1_ROUTES, ids=_label)
def test_v1_keys_of_the_company_reach_the_route(
    route: Route, company: Company, api_owner: KeyPersona, api_viewer: KeyPersona
) -> None:
    """Both keys read; the owner's key reaches DELETE-only routes (the URL is a real one)."""
    url = _url(route, company)
    methods = allowed_methods(route)
    if "GET" not in methods:
        assert _call("GET", url, api_owner).status_code == 405
        response = _call(methods[0], url, api_owner)
        assert 200 <= response.status_code < 300, (url, response.status_code, response.content)
        return
    for persona in (api_owner, api_viewer):
        response = _call("GET", url, persona)
        assert 200 <= response.status_code < 300, (url, response.status_code, response.content)


@pytest.mark.parametrize("route", [r for r in V1_ROUTES if r.object_kwargs], ids=_label)
def test_v1_outsider_key_cannot_reach_objects(
    route: Route, company: Company, api_outsider: KeyPersona
) -> None:
    url = _url(route, company)
    problems = []
    for method in allowed_methods(route):
        before = db_snapshot()
        response = _call(method, url, api_outsider)
        if response.status_code != 404 or _status(response) != 404:
            problems.append(f"outsider {method} {url} → {response.status_code}, expected 404")
        changed = snapshot_diff(before, db_snapshot())
        if changed:
            problems.append(f"outsider {method} {url} changed {changed}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "route",
    [r for r in V1_ROUTES if not r.object_kwargs and "GET" in allowed_methods(r)],
    ids=_label,
)
def test_v1_outsider_key_sees_nothing_of_the_company(
    route: Route, company: Company, api_owner: KeyPersona, api_outsider: KeyPersona
) -> None:
    ours = _seed_v1(company)
    # The outsider's company has lists of its own (its programmes, its member).
    theirs = Contact.objects.create(
        company=api_outsider.company, email="their@globex-v1.test", phone="+77011234598"
    )
    _seed_autopilot(api_outsider.company, theirs, "their-autopilot")
    response = _call("GET", route.path({}), api_outsider)
    assert 200 <= response.status_code < 300, response.status_code
    leaked = sorted(value for value in ours if value in response.content.decode())
    assert not leaked, f"{route.route} shows {leaked} to another company's key"


@pytest.mark.parametrize(
    "route",
    [r for r in V1_ROUTES if not r.object_kwargs and set(allowed_methods(r)) & set(WRITE_METHODS)],
    ids=_label,
)
def test_v1_outsider_key_cannot_write_to_the_company_by_its_identifiers(
    route: Route, company: Company, api_outsider: KeyPersona
) -> None:
    """Writes that name a person in the body (people, unsubscribes, Autopilot memberships):
    another company's key, giving our person's id, email or phone number, changes nothing of
    ours (its own company may gain a person) and reads nothing of ours back."""
    ours = _seed_v1(company)
    theirs = Contact.objects.create(
        company=api_outsider.company, email="their@globex-v1.test", phone="+77011234598"
    )
    _seed_autopilot(api_outsider.company, theirs, "their-autopilot")
    person = Contact.objects.for_company(company).get(email="seeded-person@acme-v1.test")
    url = route.path({})
    identifiers: list[dict[str, Any]] = [
        {"person_id": person.public_id},
        {"person": person.public_id},
        {"person_email": person.email, "email": person.email},
        {"person_phone_number": person.phone, "phone_number": person.phone},
    ]
    problems = []
    for method in [m for m in allowed_methods(route) if m in WRITE_METHODS]:
        for identifier in identifiers:
            before = _company_rows(company)
            body = {"properties": {"Plan": "taken over"}, "score": 0, "send": False, **identifier}
            client = Client(raise_request_exception=False)
            response = client.generic(
                method,
                url,
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=basic(api_outsider.key),
            )
            if response.status_code >= 500:
                problems.append(f"outsider {method} {url} {identifier} → {response.status_code}")
            changed = snapshot_diff(before, _company_rows(company))
            if changed:
                problems.append(f"outsider {method} {url} {identifier} changed {changed}")
            leaked = sorted(
                value
                for value in ours - {person.email or "", person.phone or ""}
                if value in response.content.decode()
            )
            if leaked:
                problems.append(f"outsider {method} {url} {identifier} shows {leaked}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "route", [r for r in V1_ROUTES if set(allowed_methods(r)) & set(WRITE_METHODS)], ids=_label
)
def test_v1_read_only_key_cannot_write(
    route: Route, company: Company, api_viewer: KeyPersona
) -> None:
    url = _url(route, company)
    problems = []
    for method in [m for m in allowed_methods(route) if m in WRITE_METHODS]:
        before = db_snapshot()
        response = _call(method, url, api_viewer)
        if response.status_code != 403 or _status(response) != 403:
            problems.append(f"read-only {method} {url} → {response.status_code}, expected 403")
        changed = snapshot_diff(before, db_snapshot())
        if changed:
            problems.append(f"read-only {method} {url} changed {changed}")
    assert not problems, "\n".join(problems)
