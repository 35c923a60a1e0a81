"""Replies to the customer from a follow-up: the email, its reply-to token, the thread."""

from __future__ import annotations

import pytest

from companies.models import Role
from responses.alerts import alerts_evaluate
from responses.followups_replies import (
    followup_for_reply_address,
    followup_reply_send,
    reply_address,
)
from responses.models import Followup, FollowupEvent, FollowupEventKind, FollowupStatus
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db


def open_followup(company, *, anonymous: bool = False, email: str = "ann@customer.test"):
    survey = make_survey(company, anonymous=anonymous)
    invitation, _t = make_invitation(survey, make_contact(company, email=email))
    response = response_record(
        invitation=invitation, survey=survey, score=1, channel="email", language="en"
    )
    alerts_evaluate(company=company, response_id=response.pk)
    return Followup.objects.for_company(company).get(response=response)


@pytest.fixture
def inbound_domain(settings):
    settings.FOLLOWUP_REPLY_DOMAIN = "replies.nps.test"


def test_reply_goes_to_the_customer_with_a_routing_reply_to(
    company, personas, inbound_domain, mailoutbox
):
    followup = open_followup(company)
    mailoutbox.clear()
    agent = personas[Role.AGENT]
    url = f"/c/{company.slug}/inbox/f/{followup.public_id}/reply/"
    response = agent.client.post(
        url, {"reply-subject": "Sorry", "reply-body": "We <fixed> it.\n\nAnn"}
    )
    assert response.status_code == 302
    (mail,) = mailoutbox
    assert mail.to == ["ann@customer.test"]
    assert mail.subject == "Sorry"
    (reply_to,) = mail.reply_to
    assert reply_to == reply_address(company=company, followup=followup)
    local, _at, domain = reply_to.partition("@")
    assert domain == "replies.nps.test"
    assert len(local) <= 64
    assert local == local.lower()
    html = next(c for c, mime in mail.alternatives if mime == "text/html")
    assert "&lt;fixed&gt;" in html
    # The address leads back to the thread; a tampered or foreign one leads nowhere.
    assert followup_for_reply_address(reply_to.upper()) == followup
    assert followup_for_reply_address(reply_to.replace("reply+", "reply+x")) is None
    assert followup_for_reply_address("reply+" + "a" * 26 + "@replies.nps.test") is None
    assert followup_for_reply_address(f"{local}@other.test") is None
    followup.refresh_from_db()
    assert followup.first_reply_at is not None
    assert followup.status == FollowupStatus.WAITING
    event = FollowupEvent.objects.for_company(company).get(kind=FollowupEventKind.REPLY)
    assert event.actor == agent.user
    assert event.data["to"] == "ann@customer.test"


def test_a_second_reply_uses_the_same_address(company, personas, inbound_domain, mailoutbox):
    followup = open_followup(company)
    for text in ("one", "two"):
        followup_reply_send(
            company=company,
            followup=followup,
            actor=personas[Role.AGENT].user,
            subject="Hi",
            body=text,
        )
    replies = [m for m in mailoutbox if m.to == ["ann@customer.test"]]
    assert len(replies) == 2
    assert replies[0].reply_to == replies[1].reply_to


def test_without_an_inbound_domain_the_agent_gets_the_answer(company, personas, mailoutbox):
    followup = open_followup(company)
    mailoutbox.clear()
    followup_reply_send(
        company=company, followup=followup, actor=personas[Role.AGENT].user, subject="Hi", body="x"
    )
    assert mailoutbox[0].reply_to == ["agent@acme.test"]


def test_anonymous_respondents_cannot_be_replied_to(company, owner, mailoutbox):
    followup = open_followup(company, anonymous=True)
    mailoutbox.clear()
    page = owner.client.get(f"/c/{company.slug}/inbox/f/{followup.public_id}/")
    assert 'data-testid="reply-form"' not in page.content.decode()
    owner.client.post(
        f"/c/{company.slug}/inbox/f/{followup.public_id}/reply/",
        {"reply-subject": "a", "reply-body": "b"},
    )
    assert mailoutbox == []
    assert not FollowupEvent.objects.for_company(company).filter(kind="reply").exists()


def test_viewers_cannot_reply(company, personas, mailoutbox):
    followup = open_followup(company)
    mailoutbox.clear()
    response = personas[Role.VIEWER].client.post(
        f"/c/{company.slug}/inbox/f/{followup.public_id}/reply/",
        {"reply-subject": "a", "reply-body": "b"},
    )
    assert response.status_code == 403
    assert mailoutbox == []


def test_outsiders_cannot_reply(company, outsider, mailoutbox):
    followup = open_followup(company)
    mailoutbox.clear()
    for slug in (company.slug, outsider.company.slug):
        response = outsider.client.post(
            f"/c/{slug}/inbox/f/{followup.public_id}/reply/",
            {"reply-subject": "a", "reply-body": "b"},
        )
        assert response.status_code == 404
    assert mailoutbox == []


def test_loop_metrics_on_the_inbox(company, personas):
    from datetime import UTC, datetime, timedelta

    import time_machine

    from responses.followups import followup_set_status

    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    agent = personas[Role.AGENT].user
    with time_machine.travel(start, tick=False):
        quick = open_followup(company, email="quick@customer.test")
        slow = open_followup(company, email="slow@customer.test")
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        followup_reply_send(company=company, followup=quick, actor=agent, subject="Hi", body="x")
        followup_set_status(
            company=company, followup=quick, status="resolved", resolution="fixed", actor=agent
        )
    with time_machine.travel(start + timedelta(hours=6), tick=False):
        followup_reply_send(company=company, followup=slow, actor=agent, subject="Hi", body="y")
    with time_machine.travel(start + timedelta(hours=50), tick=False):
        followup_set_status(
            company=company, followup=slow, status="resolved", resolution="fixed", actor=agent
        )
        body = personas[Role.VIEWER].client.get(f"/c/{company.slug}/inbox/").content.decode()
    # One of two resolved within the 48 h; first replies after 2 h and 6 h: 4 h on average.
    assert "50% of 2 resolved follow-ups were resolved within the SLA." in body
    assert "Time to first reply: 4.0 hours on average." in body


def _inbound(to: str, text: str, message_id: str = "<m1@customer.test>") -> None:
    from anymail.inbound import AnymailInboundMessage
    from anymail.signals import AnymailInboundEvent, inbound

    message = AnymailInboundMessage.construct(
        from_email="Ann <ann@customer.test>",
        to=to,
        subject="Re: Sorry",
        text=text,
        headers={"Message-ID": message_id},
    )
    inbound.send(
        sender=object,
        event=AnymailInboundEvent(event_type="inbound", message=message),
        esp_name="Postmark",
    )


def test_the_customers_answer_lands_in_the_same_thread(company, personas, inbound_domain):
    followup = open_followup(company)
    agent = personas[Role.AGENT]
    followup_reply_send(
        company=company, followup=followup, actor=agent.user, subject="Sorry", body="Fixed?"
    )
    followup.refresh_from_db()
    assert followup.status == FollowupStatus.WAITING
    address = reply_address(company=company, followup=followup)
    assert address is not None
    _inbound(f"Support <{address}>", "Yes, thank you!")
    _inbound(f"Support <{address}>", "Yes, thank you!")  # the provider retried: added once
    _inbound("someone-else@replies.nps.test", "not ours", message_id="<m2@x>")
    (event,) = FollowupEvent.objects.for_company(company).filter(kind="customer_reply")
    assert event.body == "Yes, thank you!"
    assert event.data["from"] == "ann@customer.test"
    assert event.actor is None
    followup.refresh_from_db()
    assert followup.status == FollowupStatus.IN_PROGRESS  # the team's turn again
    page = agent.client.get(f"/c/{company.slug}/inbox/f/{followup.public_id}/").content.decode()
    assert "Yes, thank you!" in page


def test_an_answer_to_a_resolved_follow_up_reopens_it(company, personas, inbound_domain):
    from responses.followups import followup_set_status

    followup = open_followup(company)
    agent = personas[Role.AGENT].user
    followup_reply_send(company=company, followup=followup, actor=agent, subject="Hi", body="x")
    followup_set_status(
        company=company, followup=followup, status="resolved", resolution="contacted", actor=agent
    )
    address = reply_address(company=company, followup=followup)
    assert address is not None
    _inbound(address, "Actually, it broke again")
    followup.refresh_from_db()
    assert followup.status == FollowupStatus.IN_PROGRESS
    assert followup.resolution == ""


def test_a_reply_address_never_crosses_companies(company, other_company, personas, inbound_domain):
    ours = open_followup(company)
    theirs = open_followup(other_company)
    followup_reply_send(
        company=company, followup=ours, actor=personas[Role.AGENT].user, subject="a", body="b"
    )
    address = reply_address(company=company, followup=ours)
    assert address is not None
    assert followup_for_reply_address(address) == ours
    # Their follow-up never replied: its derived address is not routable yet.
    their_address = reply_address(company=other_company, followup=theirs)
    assert their_address is not None
    assert their_address != address
    assert followup_for_reply_address(their_address) is None


def test_detractor_recovery(company, personas):
    from datetime import UTC, datetime, timedelta

    import time_machine

    from responses.followups import followup_set_status
    from responses.followups_selectors import detractor_recovery

    agent = personas[Role.AGENT].user
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def answer_again(followup, score: int) -> None:
        survey = make_survey(company, name=f"Again {score}")
        contact = followup.response.contact
        invitation, _t = make_invitation(survey, contact)
        response_record(
            invitation=invitation, survey=survey, score=score, channel="email", language="en"
        )

    with time_machine.travel(start, tick=False):
        won = open_followup(company, email="won@customer.test")
        lost = open_followup(company, email="lost@customer.test")
        silent = open_followup(company, email="silent@customer.test")
        open_followup(company, anonymous=True)
        for f in (won, lost, silent):
            followup_set_status(
                company=company, followup=f, status="resolved", resolution="fixed", actor=agent
            )
    with time_machine.travel(start + timedelta(days=30), tick=False):
        answer_again(won, 9)
        answer_again(lost, 3)
    assert detractor_recovery(company=company) == {
        "answered_again": 2,
        "recovered": 1,
        "recovered_percent": 50.0,
    }


def test_a_postmark_inbound_webhook_brings_the_answer_into_the_thread(
    company, personas, inbound_domain, settings
):
    """End to end over HTTP: Postmark posts the customer's mail to /anymail/postmark/inbound/
    (basic auth, as for tracking); without the secret the URL is not there."""
    import base64
    import json

    from django.test import Client

    settings.EMAIL_PROVIDER = "postmark"
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:secret"}
    followup = open_followup(company)
    agent = personas[Role.AGENT]
    followup_reply_send(
        company=company, followup=followup, actor=agent.user, subject="Sorry", body="Fixed?"
    )
    address = reply_address(company=company, followup=followup)
    payload = {
        "FromFull": {"Email": "ann@customer.test", "Name": "Ann"},
        "ToFull": [{"Email": address, "Name": ""}],
        "To": address,
        "Subject": "Re: Sorry",
        "TextBody": "It works now, thanks.",
        "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "Headers": [{"Name": "Message-ID", "Value": "<abc@customer.test>"}],
        "Date": "Fri, 1 Aug 2026 16:45:32 -04:00",
    }
    auth = "Basic " + base64.b64encode(b"hook:secret").decode()
    url = "/anymail/postmark/inbound/"
    posted = Client().post(
        url, json.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert posted.status_code == 200
    (event,) = FollowupEvent.objects.for_company(company).filter(kind="customer_reply")
    assert event.body.strip() == "It works now, thanks."
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}
    closed = Client().post(
        url, json.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert closed.status_code == 404
