"""The route walker and object registry behind the persona tests (web and API).

The persona tests do not list endpoints by hand: they walk the project's URL resolver, so a
route added tomorrow is tested (or fails the suite) without anyone remembering to add it.
To test a route with an object in its URL (``<str:invite_id>``), the walker needs to make a
real object of the persona's company for that keyword: register a factory for it below.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern

from companies.models import ApiKey, Company, Membership, Role, TeamInvite
from companies.services import api_key_create, team_invite_create
from conftest import make_user

COMPANY_KWARG = "company_slug"
API_PREFIX = "api/v1/"
# Delighted's API (delighted_compat): its own walker, tests/test_personas_v1.py.
DELIGHTED_PREFIX = "v1/"

# --- Objects for URL keywords ---------------------------------------------------------------

Factory = Callable[[Company], str]


def _pending_invite(company: Company) -> str:
    issued = team_invite_create(
        company=company,
        email=f"invited-{secrets.token_hex(4)}@invites.test",
        role=Role.AGENT,
        invited_by=None,
    )
    return issued.invite.public_id


def _api_key(company: Company) -> str:
    return api_key_create(company=company, name="walker key").api_key.public_id


def _member(company: Company) -> str:
    """A non-owner teammate's membership (so that removing it is allowed)."""
    user = make_user(f"walker-member-{secrets.token_hex(4)}@members.test")
    membership = Membership.objects.create(company=company, user=user, role=Role.AGENT)
    return membership.public_id


def _walker_survey(company: Company) -> Any:
    from surveys.models import Survey, SurveyStatus

    return Survey.objects.create(
        company=company, name=f"Walker survey {secrets.token_hex(3)}", status=SurveyStatus.ACTIVE
    )


def _campaign(company: Company) -> str:
    """A finished campaign (reading it changes nothing; nothing is left to send)."""
    from surveys.models import Campaign, CampaignStatus

    campaign = Campaign.objects.create(
        company=company,
        survey=_walker_survey(company),
        audience={"all": True},
        status=CampaignStatus.DONE,
    )
    return campaign.public_id


def _invitation(company: Company) -> str:
    """A sent invitation to a contact of ``company``."""
    from django.utils import timezone

    from surveys.models import Contact, Invitation, InvitationStatus
    from surveys.tokens import new_nonce, token_for, token_hash

    contact = Contact.objects.create(
        company=company, email=f"walker-{secrets.token_hex(4)}@contacts.test"
    )
    nonce = new_nonce()
    invitation = Invitation.objects.create(
        company=company,
        survey=_walker_survey(company),
        contact=contact,
        token_nonce=nonce,
        token_hash=token_hash(token_for(nonce)),
        status=InvitationStatus.SENT,
        sent_at=timezone.now(),
    )
    return invitation.public_id


def _survey(company: Company) -> str:
    """An active survey of ``company`` (its editor, status, send and trigger routes)."""
    return str(_walker_survey(company).public_id)


def _contact(company: Company) -> str:
    from surveys.models import Contact

    contact = Contact.objects.create(
        company=company,
        email=f"walker-contact-{secrets.token_hex(4)}@contacts.test",
        properties={"plan": "walker"},
    )
    return contact.public_id


def _contact_import(company: Company) -> str:
    """A finished contact import (no stored file: reading it touches no storage)."""
    from surveys.models import ContactImport, ImportStatus

    contact_import = ContactImport.objects.create(
        company=company,
        file_name=f"walker-{secrets.token_hex(3)}.csv",
        headers=["email", "plan"],
        mapping={"email": "email", "plan": "property:plan"},
        status=ImportStatus.DONE,
    )
    return contact_import.public_id


def _followup(company: Company) -> str:
    """A detractor's answer with its open follow-up (made directly: no alert task runs)."""
    from datetime import timedelta

    from django.utils import timezone

    from responses.models import Followup, Response
    from surveys.models import Contact

    survey = _walker_survey(company)
    contact = Contact.objects.create(
        company=company, email=f"walker-detractor-{secrets.token_hex(4)}@contacts.test"
    )
    response = Response.objects.create(
        company=company,
        survey=survey,
        contact=contact,
        score=3,
        category="detractor",
        comment="Walker: slow service",
        channel="email",
    )
    followup = Followup.objects.create(
        company=company,
        response=response,
        survey=survey,
        score=3,
        due_at=timezone.now() + timedelta(hours=48),
    )
    return followup.public_id


def _digest_address(company: Company) -> str:
    from dashboards.models import DigestAddress

    address = DigestAddress.objects.create(
        company=company, email=f"walker-digest-{secrets.token_hex(4)}@digests.test"
    )
    return address.public_id


def _alert_rule(company: Company) -> str:
    from responses.models import AlertRule

    rule = AlertRule.objects.create(company=company, name="Walker rule", category="detractor")
    return rule.public_id


def _webhook_endpoint(company: Company) -> str:
    """An endpoint (made directly: creating one through the service resolves its host)."""
    from companies.credentials import secret_encrypt
    from notifications.webhooks import webhook_secret_new
    from notifications.webhooks_models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(
        company=company,
        url=f"https://walker-{secrets.token_hex(3)}.hooks.test/nps",
        event_types=["response.created"],
        secret_encrypted=secret_encrypt(webhook_secret_new()),
    )
    return endpoint.public_id


def _delighted_import(company: Company) -> Any:
    """A finished Delighted import of one file (no stored file: nothing touches storage)."""
    from delighted_compat.models import DelightedImport, DelightedImportStatus, ExportKind

    return DelightedImport.objects.create(
        company=company,
        batch=secrets.token_hex(16),
        kind=ExportKind.PEOPLE,
        file_name=f"walker-{secrets.token_hex(3)}.csv",
        headers=["Email", "Plan"],
        mapping={"Email": "email", "Plan": "property:Plan"},
        status=DelightedImportStatus.DONE,
    )


def _sso_domain(company: Company) -> str:
    """A verified email domain of the company's single sign-on (sso/): verifying it again
    changes nothing and asks no DNS server."""
    from django.utils import timezone

    from sso.models import SsoDomain

    domain = SsoDomain.objects.create(
        company=company, domain=f"walker-{secrets.token_hex(3)}.test", verified_at=timezone.now()
    )
    return domain.public_id


# A keyword name → a function that makes a real object of ``company`` and returns the value
# that goes into the URL. A route whose keyword has no entry here fails the persona tests.
URL_KWARG_FACTORIES: dict[str, Factory] = {
    "invite_id": _pending_invite,
    "key_id": _api_key,
    "member_id": _member,
    "campaign_id": _campaign,
    "invitation_id": _invitation,
    "contact_id": _contact,
    "survey_id": _survey,
    "import_id": _contact_import,
    "followup_id": _followup,
    "rule_id": _alert_rule,
    "endpoint_id": _webhook_endpoint,
    "digest_address_id": _digest_address,
    "batch_id": lambda company: str(_delighted_import(company).batch),
    "delighted_import_id": lambda company: str(_delighted_import(company).public_id),
    "sso_domain_id": _sso_domain,
}


def _v1_person(company: Company) -> Any:
    from surveys.models import Contact

    return Contact.objects.create(
        company=company, email=f"walker-person-{secrets.token_hex(4)}@people.test"
    )


def _v1_response(company: Company) -> str:
    """An answer in the company's survey of Delighted's API (what an unbound key reads)."""
    from delighted_compat.api.services import default_survey_ensure
    from responses.models import Response

    response = Response.objects.create(
        company=company,
        survey=default_survey_ensure(company=company),
        contact=_v1_person(company),
        score=9,
        category="promoter",
        channel="link",
    )
    return response.public_id


# For generic keyword names (``id``, ``pk``) that mean different objects on different routes:
# (route name, keyword) → factory. Checked before URL_KWARG_FACTORIES.
ROUTE_KWARG_FACTORIES: dict[tuple[str, str], Factory] = {
    ("v1-person", "identifier"): lambda company: _v1_person(company).public_id,
    ("v1-person-pending", "email"): lambda company: _v1_person(company).email or "",
    ("v1-response", "response_id"): _v1_response,
}


class MissingFactory(LookupError):
    pass


def factory_for(route: Route, kwarg: str) -> Factory:
    if route.name and (route.name, kwarg) in ROUTE_KWARG_FACTORIES:
        return ROUTE_KWARG_FACTORIES[(route.name, kwarg)]
    if kwarg in URL_KWARG_FACTORIES:
        return URL_KWARG_FACTORIES[kwarg]
    raise MissingFactory(
        f"route {route.route!r} ({route.name}): register a factory for {kwarg} in "
        f"URL_KWARG_FACTORIES (tests/personas.py), or in ROUTE_KWARG_FACTORIES"
        f"[({route.name!r}, {kwarg!r})] if the name is generic"
    )


def object_kwargs(route: Route, company: Company) -> dict[str, str]:
    """Real objects of ``company`` for every keyword of ``route`` except the company slug."""
    return {kwarg: factory_for(route, kwarg)(company) for kwarg in route.object_kwargs}


# --- The route walker --------------------------------------------------------------------------

_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _group_end(regex: str, start: int) -> int:
    """The index just after the group that opens at ``regex[start]`` (nesting included)."""
    depth, j = 1, start + 1
    while depth:
        if regex[j] == "\\":
            j += 2
            continue
        depth += {"(": 1, ")": -1}.get(regex[j], 0)
        j += 1
    return j


def _regex_fill(regex: str, values: dict[str, str]) -> str:
    """Replace each ``(?P<name>…)`` group of a regex route with its value, drop optional
    unnamed groups (``(_mime)?``: the shortest path) and the anchors."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            name_end = regex.index(">", i)
            name = regex[i + 4 : name_end]
            out.append(values[name])
            i = _group_end(regex, i)
        elif regex[i] == "(" and regex[_group_end(regex, i) : _group_end(regex, i) + 1] == "?":
            i = _group_end(regex, i) + 1
        elif regex[i] == "\\" and i + 1 < len(regex):
            out.append(regex[i + 1])
            i += 2
        else:
            out.append(regex[i])
            i += 1
    return "".join(out).removeprefix("^").removesuffix("$")


def _piece_kwargs(pattern: Any) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return [m.group("name") for m in _ROUTE_PARAM.finditer(str(pattern))]
    if isinstance(pattern, RegexPattern):
        return list(pattern.regex.groupindex)
    return []


def _piece_text(pattern: Any) -> str:
    if isinstance(pattern, RegexPattern):
        return str(pattern).removeprefix("^").removesuffix("$")
    if isinstance(pattern, LocalePrefixPattern):
        return pattern.language_prefix
    return str(pattern)


def _piece_fill(pattern: Any, values: dict[str, str]) -> str:
    if isinstance(pattern, RoutePattern):
        return _ROUTE_PARAM.sub(lambda m: values[m.group("name")], str(pattern))
    if isinstance(pattern, RegexPattern):
        return _regex_fill(str(pattern), values)
    return _piece_text(pattern)


@dataclass(frozen=True)
class Route:
    """One URL pattern of the project with the chain of patterns that leads to it."""

    route: str  # e.g. "c/<slug:company_slug>/team/invites/<str:invite_id>/revoke/"
    name: str | None  # namespaced: "companies:team"
    callback: Callable[..., Any]
    kwargs: tuple[str, ...]
    pieces: tuple[Any, ...] = field(repr=False)

    @property
    def is_company(self) -> bool:
        return COMPANY_KWARG in self.kwargs

    @property
    def is_api(self) -> bool:
        return self.route.startswith(API_PREFIX)

    @property
    def is_delighted_api(self) -> bool:
        return self.route.startswith(DELIGHTED_PREFIX)

    @property
    def object_kwargs(self) -> tuple[str, ...]:
        return tuple(k for k in self.kwargs if k != COMPANY_KWARG)

    @property
    def view_class(self) -> type | None:
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)

    @property
    def label(self) -> str:
        return self.name or self.route

    def path(self, values: dict[str, str]) -> str:
        """The URL path for these keyword values; checked to resolve back to this route."""
        missing = set(self.kwargs) - set(values)
        assert not missing, f"{self.route}: no value for {sorted(missing)}"
        path = "/" + "".join(_piece_fill(piece, values) for piece in self.pieces)
        match = resolve(path)
        assert match.func is self.callback, (
            f"{path} resolved to {match.func} ({match.route}), not to the route under test "
            f"{self.route}: two patterns overlap"
        )
        return path


def _walk(resolver: URLResolver, pieces: tuple[Any, ...], namespace: str) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        chain = (*pieces, entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, chain, inner)
        elif isinstance(entry, URLPattern):
            kwargs: list[str] = []
            for piece in chain:
                kwargs += _piece_kwargs(piece)
            yield Route(
                route="".join(_piece_text(piece) for piece in chain),
                name=f"{namespace}{entry.name}" if entry.name else None,
                callback=entry.callback,
                kwargs=tuple(kwargs),
                pieces=chain,
            )


def walk_routes() -> list[Route]:
    """Every URL pattern of ROOT_URLCONF, includes expanded."""
    return list(_walk(get_resolver(), (), ""))


# --- What changed in the database ------------------------------------------------------------

PROJECT_APPS = (
    "companies",
    "notifications",
    "surveys",
    "responses",
    "dashboards",
    "delighted_compat",
    "account",
)
# Bookkeeping that a request may legitimately touch without changing anything a tenant owns.
VOLATILE_FIELDS = frozenset({"last_used_at", "last_login"})


def _rows(model: type[models.Model]) -> list[tuple[Any, ...]]:
    manager: Any = model._default_manager
    queryset = (
        manager.unscoped(reason="the persona tests compare whole tables")
        if hasattr(manager, "unscoped")
        else manager.all()
    )
    names = [f.attname for f in model._meta.concrete_fields if f.name not in VOLATILE_FIELDS]
    return list(queryset.order_by("pk").values_list(*names))


def db_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the project's own tables (and allauth's addresses), for before/after."""
    return {
        model._meta.label: _rows(model)
        for config in apps.get_app_configs()
        if config.label in PROJECT_APPS
        for model in config.get_models()
    }


def snapshot_diff(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    """The tables whose rows differ, with a short description of how."""
    changes = []
    for label, rows_before in before.items():
        rows_after = after.get(label, [])
        if rows_before != rows_after:
            gone = len(set(rows_before) - set(rows_after))
            new = len(set(rows_after) - set(rows_before))
            changes.append(f"{label}: {new} new/changed row(s), {gone} removed/changed row(s)")
    return changes


# --- Identifying values of a company (what an outsider must never see) -----------------------


def seed_company(company: Company) -> set[str]:
    """Give ``company`` an object of every registered kind and return its fingerprints.

    The name gets a random suffix first: a fixture's "Acme Coffee" may well appear on a page
    as an example (a placeholder) without anything having leaked.
    """
    company.name = f"{company.name} {secrets.token_hex(3)}"
    company.save(update_fields=["name"])
    for make in URL_KWARG_FACTORIES.values():
        make(company)
    return fingerprints(company)


def fingerprints(company: Company) -> set[str]:
    """Values that identify ``company`` or its objects and would never appear by chance."""
    values: set[str] = {company.slug, company.name}
    for membership in Membership.objects.for_company(company).select_related("user"):
        values |= {membership.user.email, membership.public_id}
    for invite in TeamInvite.objects.for_company(company):
        values |= {invite.public_id, invite.email}
    for key in ApiKey.objects.for_company(company):
        values |= {key.public_id, key.prefix}
    return {value for value in values if value}


# A generic payload for the refused writes (form fields on the web, JSON on the API): valid
# enough to change something if a view forgot its guard (a viewer role is accepted by invites
# and is a real change for the agent that _member makes). The tests assert nothing changed.
POST_PAYLOAD = {
    "name": "Intruder",
    "email": "intruder@evil.test",
    "role": Role.VIEWER.value,
    "company_name": "Taken over",
    "industry": "other",
    "time_zone": "UTC",
    "country": "KZ",
    "sender_name": "Intruder",
    "reply_to": "intruder@evil.test",
    "default_language": "en",
}
