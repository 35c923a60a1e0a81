"""Outbound webhook events about responses and follow-ups, and the Slack post of an alert.

The payloads carry public ids only. An anonymous survey's (eNPS) response never carries its
contact or properties: the webhook must not reveal a respondent who was promised anonymity.
The post office (notifications.webhooks) fans an event out to the company's subscribed
endpoints; called inside a transaction, the messages are part of it and go out on commit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from companies.models import Company
from notifications.slack import slack_body, slack_post_enqueue
from notifications.webhooks import webhook_event_emit, webhook_has_subscribers
from notifications.webhooks_models import WebhookEventType
from responses.followups_emails import fallback_language
from responses.models import AlertRule, Followup, Response


def response_data(response: Response) -> dict[str, Any]:
    survey = response.survey
    data: dict[str, Any] = {
        "id": response.public_id,
        "score": response.score,
        "category": response.category,
        "comment": response.comment,
        "channel": response.channel,
        "language": response.language,
        "survey": {"id": survey.public_id, "name": survey.name, "anonymous": survey.anonymous},
        "created_at": response.created_at.isoformat(),
        "updated_at": response.updated_at.isoformat(),
    }
    if not survey.anonymous:
        data["properties"] = dict(response.invitation_properties or {})
        contact = response.contact
        if contact is not None:
            data["contact"] = {
                "id": contact.public_id,
                "email": contact.email,
                "phone": contact.phone,
                "name": contact.name,
                "properties": dict(response.contact_properties or {}),
            }
    return data


def followup_data(followup: Followup) -> dict[str, Any]:
    assignee = followup.assignee
    return {
        "id": followup.public_id,
        "status": followup.status,
        "resolution": followup.resolution,
        "assignee": (
            {"id": assignee.public_id, "email": assignee.user.email} if assignee else None
        ),
        "due_at": followup.due_at.isoformat(),
        "created_at": followup.created_at.isoformat(),
        "updated_at": followup.updated_at.isoformat(),
        "response": response_data(followup.response),
    }


def response_event_emit(*, company: Company, response: Response, created: bool) -> None:
    """``response.created`` for a new answer, ``response.updated`` for a changed one (the
    response with its survey and contact; inside a transaction, the messages are part of
    it)."""
    event = WebhookEventType.RESPONSE_CREATED if created else WebhookEventType.RESPONSE_UPDATED
    if webhook_has_subscribers(company=company, event_type=event):
        webhook_event_emit(company=company, event_type=event, data=response_data(response))


def followup_event_emit(*, company: Company, followup: Followup, created: bool) -> None:
    """``followup.created`` / ``followup.updated`` (status or assignee changed)."""
    event = WebhookEventType.FOLLOWUP_CREATED if created else WebhookEventType.FOLLOWUP_UPDATED
    if not webhook_has_subscribers(company=company, event_type=event):
        return
    row = (
        Followup.objects.for_company(company)
        .select_related("response__survey", "response__contact", "assignee__user")
        .get(pk=followup.pk)
    )
    webhook_event_emit(company=company, event_type=event, data=followup_data(row))


def _app_url(company: Company, followup: Followup | None) -> str:
    if followup is not None:
        path = reverse(
            "inbox:followup",
            kwargs={"company_slug": company.slug, "followup_id": followup.public_id},
        )
    else:
        path = reverse("responses:list", kwargs={"company_slug": company.slug})
    return settings.SITE_URL + path


def alert_actions_queue(
    *, company: Company, rule: AlertRule, response: Response, followup: Followup | None
) -> None:
    """The Slack post and the ``alert.triggered`` event of a rule that just fired. Called
    in the transaction that inserts the rule's ledger row (AlertFiring), so each goes out
    exactly as often as the row is created: once per rule and response."""
    if rule.notify_webhook and webhook_has_subscribers(
        company=company, event_type=WebhookEventType.ALERT_TRIGGERED
    ):
        webhook_event_emit(
            company=company,
            event_type=WebhookEventType.ALERT_TRIGGERED,
            data={
                "rule": {"id": rule.public_id, "name": rule.name},
                "followup": {"id": followup.public_id} if followup is not None else None,
                "response": response_data(response),
            },
        )
    if rule.notify_slack and rule.slack_webhook_url:
        slack_post_enqueue(
            company=company,
            url=rule.slack_webhook_url,
            body=alert_slack_body(company=company, rule=rule, response=response, followup=followup),
            event_type=WebhookEventType.ALERT_TRIGGERED,
        )


def alert_slack_body(
    *, company: Company, rule: AlertRule, response: Response, followup: Followup | None
) -> dict[str, Any]:
    survey = response.survey
    with translation.override(fallback_language(company)):
        fields = [
            (_("Score"), str(response.score)),
            (_("Category"), str(response.get_category_display())),
            (_("Survey"), survey.name),
        ]
        if not survey.anonymous and response.contact is not None:
            contact = response.contact
            fields.append((_("Contact"), contact.name or contact.email or contact.phone or ""))
        fields.append((_("Rule"), rule.display_name))
        return slack_body(
            title=_("Alert: score %(score)d from %(company)s")
            % {"score": response.score, "company": company.name},
            fields=fields,
            quote=response.comment,
            link_url=_app_url(company, followup),
            link_text=_("Open the follow-up") if followup is not None else _("Open responses"),
        )
