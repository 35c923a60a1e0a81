"""Outbound webhook endpoints under /c/<company_slug>/webhooks/: list, create, the endpoint
page with its delivery log, a test event, enable/disable, secret rotation, delete. Admins
only (the secret and the customer's systems are an admin's business)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from companies.models import Company, Role
from companies.permissions import company_view
from notifications.forms_webhooks import WebhookEndpointForm
from notifications.webhooks import (
    MAX_ATTEMPTS,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_get,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_set_enabled,
    webhook_endpoint_update,
    webhook_endpoints_for,
    webhook_messages_for,
    webhook_test_send,
)
from notifications.webhooks_models import WebhookEndpoint, WebhookEventType


def _company(request: HttpRequest) -> Company:
    return request.company  # type: ignore[attr-defined]


def _endpoint_or_404(request: HttpRequest, endpoint_id: str) -> WebhookEndpoint:
    endpoint = webhook_endpoint_get(company=_company(request), public_id=endpoint_id)
    if endpoint is None:
        raise Http404
    return endpoint


def _detail_page(
    request: HttpRequest, endpoint: WebhookEndpoint, *, new_secret: str = ""
) -> HttpResponse:
    labels = dict(WebhookEventType.choices)
    return render(
        request,
        "notifications/webhooks/detail.html",
        {
            "endpoint": endpoint,
            "event_labels": [labels.get(e, e) for e in endpoint.event_types or []],
            "log": webhook_messages_for(company=_company(request), endpoint=endpoint),
            "new_secret": new_secret,
            "max_attempts": MAX_ATTEMPTS,
        },
    )


@company_view(Role.ADMIN)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "notifications/webhooks/list.html",
        {"endpoints": webhook_endpoints_for(company=_company(request))},
    )


@company_view(Role.ADMIN)
def endpoint_create(request: HttpRequest) -> HttpResponse:
    company = _company(request)
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                issued = webhook_endpoint_create(company=company, **form.cleaned_data)
            except ValidationError as err:
                form.add_error(None, err)
            else:
                # Rendered, not redirected: the secret is shown on this response only.
                messages.success(request, _("Endpoint created."))
                return _detail_page(request, issued.endpoint, new_secret=issued.secret)
    else:
        form = WebhookEndpointForm(initial={"event_types": []})
    return render(request, "notifications/webhooks/form.html", {"form": form, "endpoint": None})


@company_view(Role.ADMIN)
def endpoint_detail(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    return _detail_page(request, _endpoint_or_404(request, endpoint_id))


@company_view(Role.ADMIN)
def endpoint_edit(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    company = _company(request)
    endpoint = _endpoint_or_404(request, endpoint_id)
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                webhook_endpoint_update(company=company, endpoint=endpoint, **form.cleaned_data)
            except ValidationError as err:
                form.add_error(None, err)
            else:
                messages.success(request, _("Endpoint saved."))
                return redirect(
                    "webhooks:detail", company_slug=company.slug, endpoint_id=endpoint.public_id
                )
    else:
        form = WebhookEndpointForm(initial=WebhookEndpointForm.initial_for(endpoint))
    return render(request, "notifications/webhooks/form.html", {"form": form, "endpoint": endpoint})


def _to_detail(request: HttpRequest, endpoint: WebhookEndpoint) -> HttpResponse:
    return redirect(
        "webhooks:detail", company_slug=_company(request).slug, endpoint_id=endpoint.public_id
    )


@require_POST
@company_view(Role.ADMIN)
def endpoint_test(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    webhook_test_send(company=_company(request), endpoint=endpoint)
    messages.success(request, _("Test event queued: its attempt appears in the log below."))
    return _to_detail(request, endpoint)


@require_POST
@company_view(Role.ADMIN)
def endpoint_state(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    enabled = request.POST.get("enabled") == "1"
    webhook_endpoint_set_enabled(company=_company(request), endpoint=endpoint, enabled=enabled)
    messages.success(request, _("Endpoint enabled.") if enabled else _("Endpoint disabled."))
    return _to_detail(request, endpoint)


@require_POST
@company_view(Role.ADMIN)
def endpoint_rotate(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    secret = webhook_endpoint_rotate_secret(company=_company(request), endpoint=endpoint)
    messages.success(request, _("New signing secret created; the old one no longer signs."))
    return _detail_page(request, endpoint, new_secret=secret)


@require_POST
@company_view(Role.ADMIN)
def endpoint_delete(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    company = _company(request)
    webhook_endpoint_delete(company=company, endpoint=_endpoint_or_404(request, endpoint_id))
    messages.success(request, _("Endpoint deleted."))
    return redirect("webhooks:list", company_slug=company.slug)
