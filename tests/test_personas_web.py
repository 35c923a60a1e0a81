"""Every web route, every persona: the tenancy guard cannot be forgotten on a new page.

The routes come from the URL resolver, not from a list kept by hand. A route is either

* a company route (``/c/<company_slug>/…``): owner gets in, outsider (owner of another
  company) gets 404, anonymous gets the login page, each role below the view's declared
  role gets 403 and at/above gets in; nothing changes on a refused POST;
* an API route (``/api/v1/…``): tests/test_personas_api.py;
* or a public route listed in PUBLIC_ROUTES below with the reason it needs no company.

Anything else fails ``test_every_route_is_classified``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse

from companies.models import ROLE_RANK, Company, Role
from companies.permissions import declared_roles, role_needed
from conftest import Persona
from tests.personas import (
    POST_PAYLOAD,
    MissingFactory,
    Route,
    db_snapshot,
    object_kwargs,
    seed_company,
    snapshot_diff,
    walk_routes,
)

pytestmark = pytest.mark.django_db

# Routes that serve no company's data, as fnmatch patterns over the route string, each with
# the reason. A pattern that matches no route fails the suite (the allowlist must not rot).
PUBLIC_ROUTES: dict[str, str] = {
    "": "home: sends a logged-in user to their last company or the company chooser",
    "accounts/*": "allauth: sign-up, login, logout, email confirmation, password reset",
    "i18n/setlang/": "language switcher: only sets the visitor's language",
    "api/schema/": "OpenAPI schema: public description of the API, no data",
    "api/docs/": "Swagger UI for the schema, no data",
    "admin/*": "Django admin: staff only, guarded by the admin site itself",
    "invites/*": "teammate invitation links: the token in the URL names its own company",
    "healthz": "health check for load balancers: database/Redis status only",
    "dev/outbox*": "development outbox: its views 404 unless NPS_MODE=embedded",
    "u/<str:token>/": "unsubscribe (RFC 8058): the signed token names company and address",
    "anymail/*": "provider webhooks: anymail checks the basic-auth WEBHOOK_SECRET",
    "r/<str:token>/*": "respondent answer pages: the invitation token names its own company",
    "l/<str:public_id>/*": "survey web links: the survey's public id names its own company",
    "twilio/status/": "Twilio status callbacks: X-Twilio-Signature checked, ?d names the delivery",
    "w/*": "website widget: the publishable key in the body names its survey; CORS only to the "
    "widget's allowed origins (widget/tests/test_widget_api.py)",
    "twilio/inbound/": "Twilio inbound SMS/WhatsApp: X-Twilio-Signature checked, the receiving "
    "number names the company",
}

ROUTES = walk_routes()
COMPANY_ROUTES = [r for r in ROUTES if r.is_company]
ROLES_LOW_TO_HIGH = sorted(ROLE_RANK, key=ROLE_RANK.__getitem__)


def _label(route: Route) -> str:
    return route.label


def _public_pattern(route: Route) -> str | None:
    return next((p for p in PUBLIC_ROUTES if fnmatchcase(route.route, p)), None)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Seven logins per test: a fast hasher keeps the walk quick (security is not tested here)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- The inventory -----------------------------------------------------------------------------


def test_walker_sees_the_known_routes():
    """The walker itself works: it finds a company page, an API route and allauth's pages."""
    names = {r.name for r in ROUTES}
    assert {"companies:overview", "api-company", "account_signup"} <= names
    overview = next(r for r in ROUTES if r.name == "companies:overview")
    assert overview.route == "c/<slug:company_slug>/"
    assert overview.is_company
    assert overview.path({"company_slug": "acme-1"}) == "/c/acme-1/"
    # Regex routes (allauth's) are filled in too.
    confirm = next(r for r in ROUTES if r.name == "account_confirm_email")
    assert confirm.kwargs == ("key",)
    assert confirm.path({"key": "abc:def"}) == "/accounts/confirm-email/abc:def/"


def test_every_route_is_classified():
    unclassified = [
        f"new route {r.route!r} ({r.name}) is neither under /c/<company_slug>/, /api/v1/ "
        "nor /v1/ (tests/test_personas_v1.py) nor allowlisted in PUBLIC_ROUTES "
        "(tests/test_personas_web.py)"
        for r in ROUTES
        if not r.is_company
        and not r.is_api
        and not r.is_delighted_api
        and _public_pattern(r) is None
    ]
    assert not unclassified, "\n".join(unclassified)


def test_public_allowlist_has_no_stale_entries():
    stale = [
        f"PUBLIC_ROUTES entry {pattern!r} ({reason}) matches no route: remove it"
        for pattern, reason in PUBLIC_ROUTES.items()
        if not any(fnmatchcase(r.route, pattern) for r in ROUTES)
    ]
    assert not stale, "\n".join(stale)


def test_public_routes_are_not_company_or_api_routes():
    """The allowlist cannot be used to hide a company or API route from the guard tests."""
    hidden = [
        r.route
        for r in ROUTES
        if (r.is_company or r.is_api or r.is_delighted_api) and _public_pattern(r)
    ]
    assert not hidden, hidden


def test_company_slug_is_a_slug_in_every_company_route():
    wrong = [r.route for r in COMPANY_ROUTES if "<slug:company_slug>" not in r.route]
    assert not wrong, f"company routes must use <slug:company_slug>: {wrong}"


@pytest.mark.parametrize("route", COMPANY_ROUTES, ids=_label)
def test_company_view_declares_roles(route: Route):
    roles = declared_roles(route.callback)
    assert roles is not None, (
        f"{route.route} ({route.name}): decorate the view with "
        "companies.permissions.company_view (class views: required_role)"
    )
    assert all(role in ROLE_RANK for role in roles), roles


def test_company_views_keep_csrf_protection():
    """Company pages act on cookie sessions: none may opt out of CSRF (the test client would
    not notice, it skips CSRF checks)."""
    exempt = [r.route for r in COMPANY_ROUTES if getattr(r.callback, "csrf_exempt", False)]
    assert not exempt, f"csrf_exempt company views: {exempt}"


# --- The guards, per company route -------------------------------------------------------------


def _object_kwargs(route: Route, company: Company) -> dict[str, str]:
    try:
        return object_kwargs(route, company)
    except MissingFactory as exc:
        pytest.fail(str(exc), pytrace=False)


def _url(route: Route, company: Company) -> str:
    return route.path({"company_slug": company.slug, **_object_kwargs(route, company)})


def _is_login_redirect(response) -> bool:
    login = resolve_url(settings.LOGIN_URL)
    return response.status_code == 302 and response["Location"].startswith(login)


def _allowed(status: int) -> bool:
    """Let in: the page answered (a redirect, or 405 for a method the view does not take)."""
    return 200 <= status < 400 or status == 405


@pytest.mark.parametrize("route", COMPANY_ROUTES, ids=_label)
def test_company_route_get_guards(
    route: Route, personas: dict[str, Persona], outsider: Persona, company: Company
):
    url = _url(route, company)
    problems: list[str] = []
    before = db_snapshot()

    response = personas[Role.OWNER].client.get(url)
    if not _allowed(response.status_code):
        problems.append(f"owner GET {url} → {response.status_code}, expected 2xx/3xx/405")

    response = outsider.client.get(url)
    if response.status_code != 404:
        problems.append(f"outsider GET {url} → {response.status_code}, expected 404")

    response = Client().get(url)
    if not _is_login_redirect(response):
        problems.append(f"anonymous GET {url} → {response.status_code}, expected login redirect")

    needed = role_needed(route.callback, "GET")
    assert needed is not None, f"{route.route}: no declared roles"
    for role in ROLES_LOW_TO_HIGH:
        status = personas[role].client.get(url).status_code
        if ROLE_RANK[role] < ROLE_RANK[needed] and status != 403:
            problems.append(f"{role} GET {url} → {status}, expected 403 (needs {needed})")
        if ROLE_RANK[role] >= ROLE_RANK[needed] and not _allowed(status):
            problems.append(f"{role} GET {url} → {status}, expected 2xx/3xx/405 (needs {needed})")

    changed = snapshot_diff(before, db_snapshot())
    if changed:
        problems.append(f"GET {url} changed data (a GET must be safe): {changed}")
    assert not problems, f"{route.route} ({route.name}):\n" + "\n".join(problems)


@pytest.mark.parametrize("route", COMPANY_ROUTES, ids=_label)
def test_company_route_post_guards(
    route: Route, personas: dict[str, Persona], outsider: Persona, company: Company
):
    url = _url(route, company)
    needed = role_needed(route.callback, "POST")
    assert needed is not None, f"{route.route}: no declared roles"
    problems: list[str] = []

    refused: list[tuple[str, Client, str]] = [
        ("outsider", outsider.client, "404"),
        ("anonymous", Client(), "login"),
    ]
    refused += [
        (role, personas[role].client, "403")
        for role in ROLES_LOW_TO_HIGH
        if ROLE_RANK[role] < ROLE_RANK[needed]
    ]
    for who, client, expected in refused:
        before = db_snapshot()
        response = client.post(url, POST_PAYLOAD)
        if expected == "login":
            ok = _is_login_redirect(response)
        else:
            ok = response.status_code == int(expected)
        if not ok:
            problems.append(f"{who} POST {url} → {response.status_code}, expected {expected}")
        changed = snapshot_diff(before, db_snapshot())
        if changed:
            problems.append(f"{who} POST {url} was refused but changed: {changed}")

    # Last, the owner: the URL's objects exist (a 404 above was the guard, not a bad factory)
    # and nonsense input is a form error or a redirect, never a server error.
    response = personas[Role.OWNER].client.post(url, POST_PAYLOAD)
    if response.status_code in (403, 404) or response.status_code >= 500:
        problems.append(f"owner POST {url} → {response.status_code}")

    assert not problems, f"{route.route} ({route.name}, writes need {needed}):\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize("route", [r for r in COMPANY_ROUTES if r.object_kwargs], ids=_label)
def test_company_route_objects_of_another_company(
    route: Route, owner: Persona, outsider: Persona, company: Company
):
    """The middleware checks the slug; the view must check that the object is in that company.

    The outsider asks under THEIR OWN company's slug for OUR objects (an id guessed or
    leaked): that must be a 404 and change nothing, exactly like an id that does not exist.
    """
    kwargs = _object_kwargs(route, company)
    ours = route.path({"company_slug": company.slug, **kwargs})
    theirs = route.path({"company_slug": outsider.company.slug, **kwargs})
    problems: list[str] = []
    for method in ("GET", "POST"):
        before = db_snapshot()
        if method == "GET":
            response = outsider.client.get(theirs)
        else:
            response = outsider.client.post(theirs, POST_PAYLOAD)
        changed = snapshot_diff(before, db_snapshot())
        if changed:
            problems.append(f"outsider {method} {theirs} changed {changed}")
        # A view that does not take the method refuses it before any lookup: no leak. (Asked
        # after the outsider's request, so that the owner's own POST cannot mask a change.)
        owner_status = owner.client.generic(method, ours).status_code
        expected = {404, 405} if owner_status == 405 else {404}
        if response.status_code not in expected:
            problems.append(
                f"outsider {method} {theirs} (their slug, our object) → "
                f"{response.status_code}, expected 404"
            )
    assert not problems, f"{route.route} ({route.name}):\n" + "\n".join(problems)


PUBLIC_PAGES = [r for r in ROUTES if _public_pattern(r) and not r.kwargs]


@pytest.mark.parametrize("route", PUBLIC_PAGES, ids=_label)
def test_public_route_shows_nothing_of_a_company(route: Route, company: Company, outsider: Persona):
    """Pages outside /c/… answer without a server error and name none of our objects."""
    ours = seed_company(company)
    url = route.path({})
    for who, client in (("anonymous", Client()), ("outsider", outsider.client)):
        response = client.get(url)
        assert response.status_code < 500, (who, url, response.status_code)
        body = b"".join(response) if response.streaming else response.content
        text = body.decode(errors="replace")
        leaked = sorted(value for value in ours if value in text)
        assert not leaked, f"{who} GET {url} shows {leaked}"


def test_outsider_gets_404_for_a_company_that_does_not_exist(outsider: Persona):
    """Unknown and foreign companies look the same: no way to probe which slugs exist."""
    url = reverse("companies:overview", kwargs={"company_slug": "no-such-company-123"})
    assert outsider.client.get(url).status_code == 404
