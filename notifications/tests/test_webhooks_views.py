"""The endpoint pages: create (secret shown once), URL validation, the delivery log, the test
event button, enable/disable, rotation, delete; admins only, outsiders 404."""

from __future__ import annotations

import pytest
from django.urls import reverse
from standardwebhooks import Webhook

from companies.models import Role
from notifications.tests.webhooks_fake import LoopbackReceiver, Reply
from notifications.webhooks import webhook_endpoint_create
from notifications.webhooks_models import (
    DisabledReason,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver():
    with LoopbackReceiver() as fake:
        yield fake


def url(company, name, endpoint=None):
    kwargs = {"company_slug": company.slug}
    if endpoint is not None:
        kwargs["endpoint_id"] = endpoint.public_id
    return reverse(f"webhooks:{name}", kwargs=kwargs)


def test_create_shows_the_secret_once(company, owner, receiver):
    response = owner.client.post(
        url(company, "create"),
        {"url": receiver.url, "description": "CRM", "event_types": ["response.created"]},
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.for_company(company).get()
    assert endpoint.event_types == ["response.created"]
    page = response.content.decode()
    assert 'data-testid="new-secret"' in page
    secret = page.split('id="new-secret-value" type="text" readonly value="')[1].split('"')[0]
    assert secret.startswith("whsec_")
    again = owner.client.get(url(company, "detail", endpoint)).content.decode()
    assert secret not in again
    assert 'data-testid="new-secret"' not in again


def test_an_unsafe_url_is_a_form_error(company, owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = owner.client.post(
        url(company, "create"),
        {"url": "http://169.254.169.254/latest", "event_types": ["response.created"]},
    )
    assert response.status_code == 200
    assert "private or reserved" in response.content.decode()
    assert not WebhookEndpoint.objects.for_company(company).exists()


def test_events_are_required(company, owner, receiver):
    response = owner.client.post(url(company, "create"), {"url": receiver.url})
    assert response.status_code == 200
    assert not WebhookEndpoint.objects.for_company(company).exists()


def test_the_test_button_sends_a_signed_ping_and_logs_it(
    company, owner, receiver, django_capture_on_commit_callbacks
):
    issued = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["response.created"]
    )
    receiver.reply = Reply(status=500, body=b"receiver exploded")
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.client.post(url(company, "test", issued.endpoint))
    assert response.status_code == 302
    [request] = receiver.requests
    payload = Webhook(issued.secret).verify(request.body, request.headers)
    assert payload["type"] == "ping"
    assert payload["data"]["endpoint"] == issued.endpoint.public_id
    page = owner.client.get(url(company, "detail", issued.endpoint)).content.decode()
    assert "ping" in page
    assert "HTTP 500" in page
    assert "receiver exploded" in page  # the response excerpt in the log
    attempt = WebhookAttempt.objects.for_company(company).get()
    assert attempt.latency_ms >= 0


def test_disable_enable_rotate_delete(company, owner, receiver):
    issued = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["response.created"]
    )
    endpoint = issued.endpoint
    owner.client.post(url(company, "state", endpoint), {"enabled": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == DisabledReason.MANUAL
    owner.client.post(url(company, "state", endpoint), {"enabled": "1"})
    endpoint.refresh_from_db()
    assert endpoint.enabled

    page = owner.client.post(url(company, "rotate", endpoint)).content.decode()
    new_secret = page.split('id="new-secret-value" type="text" readonly value="')[1].split('"')[0]
    assert new_secret.startswith("whsec_")
    assert new_secret != issued.secret

    response = owner.client.post(url(company, "delete", endpoint))
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.for_company(company).exists()


def test_edit_changes_url_and_events(company, owner, receiver):
    endpoint = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["response.created"]
    ).endpoint
    response = owner.client.post(
        url(company, "edit", endpoint),
        {"url": receiver.url + "?v=2", "event_types": ["followup.created", "response.updated"]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url.endswith("?v=2")
    assert endpoint.event_types == ["response.updated", "followup.created"]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_only_admins_manage_webhooks(company, personas, role, receiver):
    endpoint = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["response.created"]
    ).endpoint
    client = personas[role].client
    assert client.get(url(company, "list")).status_code == 403
    assert client.get(url(company, "detail", endpoint)).status_code == 403
    assert client.post(url(company, "test", endpoint)).status_code == 403
    assert client.post(url(company, "delete", endpoint)).status_code == 403
    assert personas[Role.ADMIN].client.get(url(company, "detail", endpoint)).status_code == 200
    assert WebhookMessage.objects.for_company(company).count() == 0


def test_an_outsider_gets_404_everywhere(company, outsider, receiver):
    endpoint = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["response.created"]
    ).endpoint
    for name in ("list", "create"):
        assert outsider.client.get(url(company, name)).status_code == 404
    for name in ("detail", "edit", "test", "state", "rotate", "delete"):
        assert outsider.client.post(url(company, name, endpoint)).status_code == 404
        # Their own slug with our endpoint's id: not found either.
        theirs = reverse(
            f"webhooks:{name}",
            kwargs={"company_slug": outsider.company.slug, "endpoint_id": endpoint.public_id},
        )
        assert outsider.client.post(theirs).status_code == 404
    assert WebhookEndpoint.objects.for_company(company).get().enabled
    assert not WebhookMessage.objects.for_company(company).exists()
