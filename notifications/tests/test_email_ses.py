"""email_send through the real anymail Amazon SES backend (boto3); only botocore's HTTP
session is fake: the request boto3 signed and serialised is captured, an SES v2 answer returned."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import botocore.httpsession  # type: ignore[import-untyped]
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse  # type: ignore[import-untyped]
from django.test import override_settings

from companies.models import Company
from notifications.email import OutgoingEmail, email_send, merge_field
from notifications.models import DeliveryStatus

pytestmark = pytest.mark.django_db


class _Body(io.BytesIO):
    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.getvalue()


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[AWSRequest]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    calls: list[AWSRequest] = []

    def send(session: Any, request: AWSRequest) -> AWSResponse:
        calls.append(request)
        body = json.dumps({"MessageId": f"ses-{len(calls)}"}).encode()
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Body(body))

    with (
        mock.patch.object(botocore.httpsession.URLLib3Session, "send", send),
        override_settings(
            EMAIL_PROVIDER="amazon_ses",
            EMAIL_BACKEND="anymail.backends.amazon_ses.EmailBackend",
            EMAIL_RATE_PER_SECOND=1_000_000.0,
            EMAIL_RATE_BURST=1_000_000,
            ANYMAIL={"AMAZON_SES_CLIENT_PARAMS": {"region_name": "eu-west-1"}},
        ),
    ):
        yield calls


def test_amazon_ses_sends_one_personalised_message_per_call(
    company: Company, ses: list[AWSRequest]
) -> None:
    emails = [
        OutgoingEmail(
            to=f"p{n}@example.com",
            subject="How likely?",
            text=f"Answer: {merge_field('answer_url')}",
            html="",
            merge={"answer_url": f"https://nps.example.com/r/token{n}/"},
        )
        for n in range(3)
    ]
    deliveries = email_send(company=company, emails=emails)
    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 3
    assert [d.provider_message_id for d in deliveries] == ["ses-1", "ses-2", "ses-3"]
    assert len(ses) == 3  # SES merges only into stored templates: one call per message
    for n, request in enumerate(ses):
        assert request.url == "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
        assert request.headers["Authorization"].startswith(b"AWS4-HMAC-SHA256")
        payload = json.loads(request.body)
        assert payload["Destination"]["ToAddresses"] == [f"p{n}@example.com"]
        raw = payload["Content"]["Raw"]["Data"]
        assert f"token{n}" in base64.b64decode(raw).decode()
