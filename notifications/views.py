"""The development outbox (``/dev/outbox/``, ``/dev/outbox.json``) and ``/u/<token>/``.

Only in the embedded default (``settings.DEV_OUTBOX_ENABLED``); everywhere else every URL
here is a 404, checked per request. No login: in the embedded default a new user must read
their verification email before they can log in, and ``make run`` listens on 127.0.0.1 only.
The messages are system data of the embedded default, not tenant data (see OutboxMessage).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from csp.decorators import csp_replace
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from companies import rls
from companies.models import Company, new_public_id
from notifications.models import OutboxChannel, OutboxMessage, SuppressionReason
from notifications.selectors import outbox_message_get, outbox_messages
from notifications.services import outbox_clear, outbox_record, suppression_add
from notifications.unsubscribe import PAGE_LANGUAGES, unsubscribe_read

P = ParamSpec("P")
R = TypeVar("R", bound=HttpResponseBase)

# Opens the links of a shown email in a new tab: the iframe is sandboxed (no scripts, no
# same-origin access) and our own pages refuse to be framed, so they cannot open inside it.
_BASE_TARGET = '<base target="_blank">'


def dev_outbox_only(view: Callable[P, R]) -> Callable[P, R]:
    """404 unless the development outbox is enabled (checked per request)."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if not settings.DEV_OUTBOX_ENABLED:
            raise Http404("The development outbox exists only in the embedded default.")
        return view(*args, **kwargs)

    return wrapped


def _as_json(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "channel": message.channel,
        "to": message.to,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "headers": message.headers,
        "created_at": message.created_at.isoformat(),
    }


@dev_outbox_only
@never_cache
@require_safe
def outbox_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "notifications/outbox.html", {"outbox_messages": list(outbox_messages())}
    )


@dev_outbox_only
@never_cache
@require_safe
def outbox_json(request: HttpRequest) -> JsonResponse:
    """A JSON list of the messages, newest first (tools and browser tests read this)."""
    return JsonResponse(
        [_as_json(message) for message in outbox_messages()],
        safe=False,
        json_dumps_params={"ensure_ascii": False},
    )


@dev_outbox_only
@never_cache
@require_safe
@xframe_options_sameorigin
# django-csp types its decorators for views that take the request alone.
@csp_replace(  # type: ignore[arg-type]
    {
        # Framed by the outbox page only; scripts never run, even when opened directly.
        "frame-ancestors": ["'self'"],
        "script-src": ["'none'"],
        "sandbox": ["allow-popups", "allow-popups-to-escape-sandbox"],
    }
)
def outbox_html(request: HttpRequest, message_id: str) -> HttpResponse:
    """One message's HTML body, for the sandboxed iframe on the outbox page."""
    message = outbox_message_get(message_id=message_id)
    if message is None or not message.html:
        raise Http404
    return HttpResponse(_BASE_TARGET + message.html, content_type="text/html; charset=utf-8")


@dev_outbox_only
@require_POST
def outbox_clear_view(request: HttpRequest) -> HttpResponse:
    removed = outbox_clear()
    messages.success(request, _("Outbox cleared (%(count)d messages).") % {"count": removed})
    return redirect("notifications:outbox")


# --- Unsubscribe (RFC 8058) -------------------------------------------------------------------


def _masked(address: str) -> str:
    """``a***@example.com``: enough to recognise one's own address, not to harvest it."""
    local, at, domain = address.partition("@")
    if not at:
        return address[:3] + "***"
    return f"{local[:1]}***@{domain}"


# CSRF is checked by hand below: a one-click POST from a mail client (RFC 8058) carries no
# cookie and no token, and the only thing a POST here can do is suppress the address named by
# the signed token, so accepting it without CSRF harms nobody. The page's own button still
# sends and checks its token.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page asking to confirm (records nothing: scanners open every link).

    POST ``List-Unsubscribe=One-Click`` (mail clients) or the page's button: suppress the
    address for the company and confirm. A bad or tampered token: a friendly 404 page.
    """
    data = unsubscribe_read(token)
    company = Company.objects.filter(pk=data.company_id).first() if data else None
    if company is not None:
        rls.activate_company(company.pk)  # the signed token names the company
    language = data.language if data and data.language else request.GET.get("lang")
    if language not in PAGE_LANGUAGES:
        language = translation.get_language()
    with translation.override(language):
        if data is None or company is None:
            return render(request, "notifications/unsubscribe_invalid.html", status=404)
        context = {"company": company, "masked_address": _masked(data.address), "done": False}
        if request.method == "POST":
            one_click = request.POST.get("List-Unsubscribe") == "One-Click"
            if not one_click:
                rejected = CsrfViewMiddleware(_no_response).process_view(
                    request, _no_response, (), {}
                )
                if rejected is not None:
                    return rejected
            suppression_add(
                company=company,
                channel=data.channel,
                address=data.address,
                reason=SuppressionReason.UNSUBSCRIBED,
                detail="one-click (RFC 8058)" if one_click else "unsubscribe page",
            )
            context["done"] = True
        return render(request, "notifications/unsubscribe.html", context)


def _no_response(request: HttpRequest) -> HttpResponse:
    raise AssertionError("CsrfViewMiddleware is only used for its process_view here")


def _csrf_rejection(request: HttpRequest) -> HttpResponseBase | None:
    """The 403 response Django's CSRF check gives this request, or None when it passes."""
    return CsrfViewMiddleware(_no_response).process_view(request, _no_response, (), {})


# --- Replying as the customer (development outbox) --------------------------------------------

INBOUND_DIRECTION = "inbound (typed in the development outbox)"


@dev_outbox_only
@require_POST
def outbox_reply(request: HttpRequest, message_id: str) -> HttpResponse:
    """Answer an SMS/WhatsApp in the outbox as its recipient would.

    The text is posted to Twilio's inbound webhook path exactly as Twilio would post it,
    signed with the development auth token (``TWILIO_AUTH_TOKEN``'s default outside
    production), so the signature check, the matching of the number and the conversation all
    run as in production. The webhook's TwiML answer is what Twilio would text back: each
    ``<Message>`` is stored in the outbox as a message to the customer.
    """
    from xml.etree import ElementTree

    from django.test import Client
    from django.urls import reverse

    from notifications.twilio_webhooks import twilio_signature

    message = outbox_message_get(message_id=message_id)
    if message is None or message.channel == OutboxChannel.EMAIL or not isinstance(message.to, str):
        raise Http404
    body = request.POST.get("body", "").strip()
    if not body:
        messages.error(request, _("Type a reply first."))
        return redirect("notifications:outbox")
    customer, sender = message.to, str(message.headers.get("From", ""))
    params = {
        "MessageSid": f"SMdev{new_public_id()}",
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "From": customer,
        "To": sender,
        "Body": body,
        "NumMedia": "0",
    }
    outbox_record(
        channel=message.channel,
        to=sender,
        text=body,
        headers={"From": customer, "Direction": INBOUND_DIRECTION},
    )
    path = reverse("twilio-inbound")
    signature = twilio_signature(settings.SITE_URL.rstrip("/") + path, params)
    # The test client runs the request through the whole stack in this process (middleware,
    # URL resolution, the webhook's signature check) without needing the server to be
    # reachable at SITE_URL.
    answer = Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)
    if answer.status_code != 200:
        messages.error(
            request, _("The webhook answered %(status)d.") % {"status": answer.status_code}
        )
        return redirect("notifications:outbox")
    # Our own webhook's answer, built by twilio's TwiML writer: not untrusted input.
    for element in ElementTree.fromstring(answer.content).iter("Message"):  # noqa: S314
        outbox_record(
            channel=message.channel,
            to=customer,
            text=element.text or "",
            headers={"From": sender, "Direction": "reply (TwiML)"},
        )
    return redirect("notifications:outbox")
