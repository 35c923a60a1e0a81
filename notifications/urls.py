from collections.abc import Callable
from functools import wraps
from typing import Any

from anymail import urls as anymail_urls
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, include, path

from notifications import twilio_webhooks, views

app_name = "notifications"


# The providers whose tracking webhooks we take (settings.EMAIL_PROVIDERS' API providers).
TRACKED_PROVIDERS = ("postmark", "mailgun", "amazon_ses", "brevo", "mailjet", "sendgrid")


def _tracking_webhook(
    provider: str, view: Callable[..., HttpResponse]
) -> Callable[..., HttpResponse]:
    """anymail's view, live only for the configured provider and with a webhook secret.

    Without ANYMAIL["WEBHOOK_SECRET"] anymail would accept anyone's posts; other providers'
    views may need settings or libraries we do not have (a 500 instead of a clean 404).
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
            raise Http404("Provider webhooks are off until ANYMAIL_WEBHOOK_SECRET is set.")
        if provider != settings.EMAIL_PROVIDER:
            raise Http404("Webhooks of a provider we do not send through.")
        return view(request, *args, **kwargs)

    return wrapped


# /anymail/<provider>/tracking/ and /anymail/<provider>/inbound/ (anymail's own routes and
# views; inbound mail carries customers' answers to follow-up replies, see
# responses/followups_replies.py), behind the same guard.
anymail_patterns = [
    URLPattern(p.pattern, _tracking_webhook(provider, p.callback), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
    for provider in TRACKED_PROVIDERS
    for kind in ("tracking", "inbound")
    if isinstance(p, URLPattern) and p.name == f"{provider}_{kind}_webhook"
]

urlpatterns = [
    # The development outbox; every view 404s unless settings.DEV_OUTBOX_ENABLED (embedded).
    path("dev/outbox/", views.outbox_list, name="outbox"),
    path("dev/outbox.json", views.outbox_json, name="outbox-json"),
    path("dev/outbox/clear", views.outbox_clear_view, name="outbox-clear"),
    path("dev/outbox/<str:message_id>/html", views.outbox_html, name="outbox-html"),
    path("dev/outbox/<str:message_id>/reply", views.outbox_reply, name="outbox-reply"),
    # One-click unsubscribe (RFC 8058): the signed token names company, channel and address.
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    # Twilio's per-message status callback (signed by Twilio; ?d=<delivery public id>).
    path("twilio/status/", twilio_webhooks.twilio_status, name="twilio-status"),
    path("anymail/", include((anymail_patterns, "anymail"))),
]
