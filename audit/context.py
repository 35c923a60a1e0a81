"""Who is acting, for the audit log: set once per request, read by ``audit_record``.

Services record their own changes (one place for the web app, ``/api/v1/`` and ``/v1/``)
without every view passing the actor down: ``AuditContextMiddleware`` keeps the request in a
context variable; the actor is read when an entry is written, after DRF has authenticated
the API key (``request.auth``) or Django the session (``request.user``). Outside a request
(Celery tasks, the command line) the actor is the system.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from rest_framework.settings import api_settings

from audit.models import ActorKind
from companies.models import ApiKey, User

_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


@dataclass(frozen=True)
class AuditActor:
    kind: str
    label: str = ""
    user: User | None = None
    api_key: ApiKey | None = None
    ip: str | None = None

    @classmethod
    def for_user(cls, user: User, *, ip: str | None = None) -> AuditActor:
        return cls(kind=ActorKind.MEMBER, label=user.email, user=user, ip=ip)

    @classmethod
    def for_api_key(cls, api_key: ApiKey, *, ip: str | None = None) -> AuditActor:
        label = f"{api_key.name} (nps_{api_key.prefix}_…)"
        return cls(kind=ActorKind.API_KEY, label=label, api_key=api_key, ip=ip)


SYSTEM = AuditActor(kind=ActorKind.SYSTEM)


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address our own proxies saw (REST_FRAMEWORK ``NUM_PROXIES``)."""
    remote = str(request.META.get("REMOTE_ADDR", "")) or None
    proxies = api_settings.NUM_PROXIES or 0
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    if proxies and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return remote


def actor_of(request: HttpRequest) -> AuditActor:
    ip = client_ip(request)
    api_key = getattr(request, "auth", None)
    if isinstance(api_key, ApiKey):
        return AuditActor.for_api_key(api_key, ip=ip)
    user = getattr(request, "user", None)
    if isinstance(user, User) and user.is_authenticated:
        return AuditActor.for_user(user, ip=ip)
    return AuditActor(kind=ActorKind.SYSTEM, ip=ip)


def current_actor() -> AuditActor:
    request = _current_request.get()
    return SYSTEM if request is None else actor_of(request)


class AuditContextMiddleware:
    """Make the request the audit context for everything it calls (after authentication)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)
