"""Suppressions: normalised, idempotent, per company, one query to check a batch."""

from __future__ import annotations

from typing import Any

import pytest

from companies.models import Company
from notifications.models import Suppression
from notifications.selectors import suppressed_addresses
from notifications.services import normalize_address, suppression_add, suppression_remove
from notifications.signals import address_suppressed

pytestmark = pytest.mark.django_db


def test_normalize_address() -> None:
    assert normalize_address("email", "  Ann@Example.TEST ") == "ann@example.test"
    assert normalize_address("sms", "+7 701 123 45 67") == "+77011234567"
    assert normalize_address("sms", "not a number") == "not a number"


def test_suppression_add_is_idempotent_and_signals_once(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    heard: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    address_suppressed.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = suppression_add(
                company=company, channel="email", address="Ann@x.test", reason="bounced"
            )
            again = suppression_add(
                company=company, channel="email", address="ann@x.test", reason="unsubscribed"
            )
    finally:
        address_suppressed.disconnect(listen)
    assert first.pk == again.pk
    assert again.reason == "bounced"  # the first reason stays
    assert Suppression.objects.for_company(company).count() == 1
    assert [h["address"] for h in heard] == ["ann@x.test"]
    assert heard[0]["company_id"] == company.pk
    assert heard[0]["reason"] == "bounced"


def test_suppressed_addresses_one_query_per_company(
    company: Company, other_company: Company, django_assert_num_queries: Any
) -> None:
    suppression_add(company=company, channel="email", address="a@x.test", reason="manual")
    suppression_add(company=other_company, channel="email", address="b@x.test", reason="manual")
    with django_assert_num_queries(1):
        found = suppressed_addresses(
            company=company, channel="email", addresses=["A@x.test", "b@x.test", "c@x.test"]
        )
    assert found == {"A@x.test"}
    assert suppressed_addresses(company=company, channel="sms", addresses=["a@x.test"]) == set()


def test_suppression_remove(company: Company) -> None:
    suppression_add(company=company, channel="email", address="a@x.test", reason="manual")
    suppression_remove(company=company, channel="email", address="A@X.test")
    suppression_remove(company=company, channel="email", address="a@x.test")  # no-op
    assert not Suppression.objects.for_company(company).exists()


def test_unknown_reason_is_refused(company: Company) -> None:
    with pytest.raises(ValueError, match="reason"):
        suppression_add(company=company, channel="email", address="a@x.test", reason="bored")
