"""Every API route under /api/v1/, three API-key personas: the key's company is the only scope.

* no key → 401 with the JSON error shape;
* a full-access key of ``company`` (api_owner) reads;
* a full-access key of ``other_company`` (api_outsider) gets 404 for ``company``'s objects and
  sees none of ``company``'s identifying values in lists;
* a read-only key of ``company`` (api_viewer) gets 403 on every write method the view takes.

Routes come from the URL resolver; objects in URLs from tests/personas.py's registry.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from companies.api_views import CompanyAPIView
from companies.models import Company, Role, role_at_least
from companies.services import api_key_create, api_key_revoke
from conftest import KeyPersona, Persona
from tests.personas import (
    POST_PAYLOAD,
    MissingFactory,
    Route,
    db_snapshot,
    fingerprints,
    object_kwargs,
    seed_company,
    snapshot_diff,
    walk_routes,
)

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

pytestmark = pytest.mark.django_db

# API views that are deliberately not CompanyAPIView: "module.Class" → (the reason, the one
# status they give to anyone, key or no key). They serve no company data, which is tested.
API_VIEW_ALLOWLIST: dict[str, tuple[str, int]] = {
    "companies.api.NotFoundApi": ("the JSON 404 for unknown paths under /api/v1/", 404),
}


def _dotted(route: Route) -> str:
    cls = route.view_class
    return f"{cls.__module__}.{cls.__qualname__}" if cls else repr(route.callback)


ALL_API_ROUTES = [r for r in walk_routes() if r.is_api]
# The company endpoints: every persona test below runs on each of them.
API_ROUTES = [r for r in ALL_API_ROUTES if _dotted(r) not in API_VIEW_ALLOWLIST]
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Reads before writes: a write that wrongly succeeds must not hide what a read would show.
METHOD_ORDER = ("GET", *WRITE_METHODS)


def allowed_methods(route: Route) -> list[str]:
    """The HTTP methods the view answers (a viewset's action map, else its handlers)."""
    actions = getattr(route.callback, "actions", None)
    cls = route.view_class
    assert cls is not None, f"{route.route}: not a class-based view"
    names = actions or [m for m in cls.http_method_names if hasattr(cls, m)]  # type: ignore[attr-defined]
    methods = {method.upper() for method in names} - {"OPTIONS", "HEAD", "TRACE"}
    unknown = methods - set(METHOD_ORDER)
    assert not unknown, f"{route.route}: methods the persona tests do not know: {unknown}"
    return sorted(methods, key=METHOD_ORDER.index)


def _call(
    method: str, url: str, persona: KeyPersona | None = None, authorization: str | None = None
) -> _MonkeyPatchedWSGIResponse:
    """One request; a server error comes back as a 500 to report, not as an exception."""
    extra: dict[str, Any] = dict(persona.headers) if persona else {}
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    client = Client(raise_request_exception=False)
    body = json.dumps(POST_PAYLOAD)
    return client.generic(method, url, data=body, content_type="application/json", **extra)


def _url(route: Route, company: Company) -> str:
    try:
        return route.path(object_kwargs(route, company))
    except MissingFactory as exc:
        pytest.fail(str(exc), pytrace=False)


def _error_status(response) -> int | None:
    try:
        return response.json()["error"]["status"]
    except (ValueError, KeyError, TypeError):
        return None


def _label(route: Route) -> str:
    return route.label


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Many logins per test: a fast hasher keeps the walk quick (security is not tested here)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_walker_sees_the_api():
    names = {r.name for r in API_ROUTES}
    assert {"api-company", "api-members"} <= names, names


@pytest.mark.parametrize("route", ALL_API_ROUTES, ids=_label)
def test_api_view_is_a_company_view(route: Route):
    cls = route.view_class
    assert cls is not None, f"{route.route}: API views are DRF class views"
    assert issubclass(cls, CompanyAPIView) or _dotted(route) in API_VIEW_ALLOWLIST, (
        f"{route.route}: {_dotted(route)} must inherit companies.api_views.CompanyAPIView "
        "(or be listed with a reason in API_VIEW_ALLOWLIST)"
    )


def test_api_allowlist_has_no_stale_entries():
    present = {_dotted(r) for r in ALL_API_ROUTES}
    stale = sorted(set(API_VIEW_ALLOWLIST) - present)
    assert not stale, f"API_VIEW_ALLOWLIST names views no route serves: {stale}"


@pytest.mark.parametrize(
    "route", [r for r in ALL_API_ROUTES if _dotted(r) in API_VIEW_ALLOWLIST], ids=_label
)
def test_api_allowlisted_view_answers_everyone_alike(
    route: Route, company: Company, api_owner: KeyPersona, api_outsider: KeyPersona
):
    """A non-company API view gives every caller the same status and none of our data."""
    _reason, status = API_VIEW_ALLOWLIST[_dotted(route)]
    url = route.path(object_kwargs(route, company))
    ours = fingerprints(company)
    for persona in (None, api_owner, api_outsider):
        for method in METHOD_ORDER:
            response = _call(method, url, persona)
            who = persona.api_key.name if persona else "no key"
            assert response.status_code == status, (who, method, url, response.status_code)
            assert _error_status(response) == status, response.content
            leaked = sorted(value for value in ours if value in response.content.decode())
            assert not leaked, (who, method, url, leaked)


@pytest.mark.parametrize("route", API_ROUTES, ids=_label)
def test_api_refuses_requests_without_a_valid_key(route: Route, company: Company):
    url = _url(route, company)
    revoked = api_key_create(company=company, name="revoked")
    api_key_revoke(company=company, api_key=revoked.api_key)
    problems = []
    for method in sorted({"GET", *allowed_methods(route)}, key=METHOD_ORDER.index):
        for label, authorization in (
            ("no key", None),
            ("unknown key", "Bearer nps_00000000_not-a-real-key"),
            ("malformed header", "Token abc"),
            ("revoked key", f"Bearer {revoked.key}"),
        ):
            response = _call(method, url, authorization=authorization)
            if response.status_code != 401 or _error_status(response) != 401:
                problems.append(
                    f"{label}: {method} {url} → {response.status_code} "
                    f"{response.content[:200]!r}, expected 401 with a JSON error"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("route", API_ROUTES, ids=_label)
def test_api_keys_of_the_company_read(
    route: Route, company: Company, api_owner: KeyPersona, api_viewer: KeyPersona
):
    """Both of the company's keys read (a read-only key as far as the view's read role)."""
    url = _url(route, company)
    response = _call("GET", url, api_owner)
    if "GET" not in allowed_methods(route):
        assert response.status_code == 405, (url, response.status_code)
        return
    assert 200 <= response.status_code < 300, (url, response.status_code, response.content)
    read_role = getattr(route.view_class, "required_role", Role.VIEWER)
    response = _call("GET", url, api_viewer)
    if role_at_least(Role.VIEWER, read_role):
        assert 200 <= response.status_code < 300, (url, response.status_code, response.content)
    else:
        assert response.status_code == 403, (url, response.status_code)


@pytest.mark.parametrize("route", [r for r in API_ROUTES if r.object_kwargs], ids=_label)
def test_api_outsider_key_cannot_reach_objects(
    route: Route, company: Company, api_owner: KeyPersona, api_outsider: KeyPersona
):
    """``company``'s objects do not exist for another company's key, whatever the method."""
    url = _url(route, company)
    methods = allowed_methods(route)
    problems = []
    for method in methods:
        before = db_snapshot()
        response = _call(method, url, api_outsider)
        if response.status_code != 404 or _error_status(response) != 404:
            problems.append(f"outsider {method} {url} → {response.status_code}, expected 404")
        changed = snapshot_diff(before, db_snapshot())
        if changed:
            problems.append(f"outsider {method} {url} changed {changed}")
    # The same URL is there for the owner's key: the 404s above came from scoping, not from
    # a factory that made the wrong object. Reads first; a write only when there is no read.
    method = "GET" if "GET" in methods else methods[0]
    response = _call(method, url, api_owner)
    if response.status_code == 404 or response.status_code >= 500:
        problems.append(f"owner {method} {url} → {response.status_code}: the URL is broken")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "route",
    [r for r in API_ROUTES if not r.object_kwargs and "GET" in allowed_methods(r)],
    ids=_label,
)
def test_api_outsider_key_sees_nothing_of_the_company(
    route: Route,
    company: Company,
    personas: dict[str, Persona],
    api_owner: KeyPersona,
    api_outsider: KeyPersona,
):
    """Collections and singletons read with another company's key show none of ours."""
    ours = seed_company(company)  # an object of every kind, so that lists have rows
    response = _call("GET", route.path({}), api_outsider)
    assert 200 <= response.status_code < 300, response.status_code
    body = response.content.decode()
    leaked = sorted(value for value in ours if value in body)
    assert not leaked, f"{route.route} shows {leaked} to another company's key"
    # And the other way round: our key sees nothing of the outsider's company.
    response = _call("GET", route.path({}), api_owner)
    assert api_outsider.company.slug not in response.content.decode()


def _writes(route: Route) -> bool:
    return bool(set(allowed_methods(route)) & set(WRITE_METHODS))


@pytest.mark.parametrize("route", [r for r in API_ROUTES if _writes(r)], ids=_label)
def test_api_read_only_key_cannot_write(route: Route, company: Company, api_viewer: KeyPersona):
    """A read-only key never writes, whatever a view declares (the key's whole promise)."""
    writes = [method for method in allowed_methods(route) if method in WRITE_METHODS]
    url = _url(route, company)
    problems = []
    for method in writes:
        before = db_snapshot()
        response = _call(method, url, api_viewer)
        if response.status_code != 403 or _error_status(response) != 403:
            problems.append(f"read-only key {method} {url} → {response.status_code}, expected 403")
        changed = snapshot_diff(before, db_snapshot())
        if changed:
            problems.append(f"read-only key {method} {url} changed {changed}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("route", API_ROUTES, ids=_label)
def test_api_options_answers_in_json(route: Route, company: Company, api_owner: KeyPersona):
    """OPTIONS tells the allowed methods with a full-access key, never a server error."""
    url = _url(route, company)
    response = _call("OPTIONS", url, api_owner)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    allowed = {method.strip() for method in response["Allow"].split(",")}
    assert set(allowed_methods(route)) <= allowed, (url, allowed)
    assert response.json()["name"]
