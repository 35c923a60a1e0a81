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
from django.test import Client

from companies.models import Company
from companies.services import api_key_create, api_key_revoke
from conftest import KeyPersona
from delighted_compat.api.base import DelightedAPIView, NotFoundApi
from delighted_compat.api.services import default_survey_ensure
from notifications.models import Suppression
from responses.models import Response
from surveys.models import Contact
from tests.personas import (
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


def _seed_v1(company: Company) -> set[str]:
    """People, an answer in the API's survey and an unsubscribe: what /v1/ lists show."""
    values = seed_company(company)
    contact = Contact.objects.create(
        company=company, email="seeded-person@acme-v1.test", name="Seeded Person"
    )
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
    }


def test_walker_sees_the_v1_routes() -> None:
    names = {r.name for r in V1_ROUTES}
    assert {"v1-people", "v1-person", "v1-responses", "v1-metrics", "v1-bounces"} <= names


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
    response = _call("GET", route.path({}), api_outsider)
    assert 200 <= response.status_code < 300, response.status_code
    leaked = sorted(value for value in ours if value in response.content.decode())
    assert not leaked, f"{route.route} shows {leaked} to another company's key"


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
