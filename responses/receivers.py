"""Responses listening to news: saved answers (alerts) and new companies (the default rule)."""

from __future__ import annotations

from typing import Any

from companies.models import Company


def on_response_saved(sender: Any, *, company_id: int, response_id: int, **kwargs: Any) -> None:
    """Every save (new answer or edit) owes its webhook event and its alert evaluation
    (marked on the row itself): a worker is woken to pay them (responses/effects.py)."""
    from responses.effects import response_effects_wake

    response_effects_wake(company_id=company_id, response_id=response_id)


def on_company_saved(sender: Any, *, instance: Company, created: bool, **kwargs: Any) -> None:
    """A new company starts with the default alert rule (every detractor: a follow-up and an
    email to the agents).

    A post_save receiver here rather than a call in ``company_create``: companies is below
    responses and must not import it. Created eagerly (not lazily on first alert) so that
    the rule is visible, editable and deletable like any other; a company that deletes it
    does not get it back. It runs inside ``company_create``'s transaction: all or nothing.
    Raw saves (fixtures, loaddata) are skipped: they bring their own rows.
    """
    if not created or kwargs.get("raw"):
        return
    from responses.alerts import alert_rule_create_default

    alert_rule_create_default(company=instance)


def on_inbound_email(sender: Any, *, event: Any, esp_name: str = "", **kwargs: Any) -> None:
    """anymail's inbound signal: a customer's answer to a follow-up reply joins its thread.

    Mail to any other address is not ours to handle and is ignored.
    """
    from responses.followups_replies import (
        followup_for_reply_address,
        followup_record_customer_reply,
    )

    message = getattr(event, "message", None)
    if message is None:
        return
    recipients = [a.addr_spec for a in (message.to or []) + (message.cc or [])]
    envelope = getattr(message, "envelope_recipient", None)
    if envelope:
        recipients.insert(0, envelope)
    for address in recipients:
        followup = followup_for_reply_address(address)
        if followup is None:
            continue
        sender_address = message.from_email.addr_spec if message.from_email else ""
        followup_record_customer_reply(
            followup=followup,
            from_email=sender_address,
            subject=message.subject or "",
            text=message.text or "",
            message_id=str(message.get("Message-ID", "") or ""),
        )
        return
