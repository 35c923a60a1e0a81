"""Alert rules: each condition, language-insensitive words, edits, exactly-once, the default
rule, and the alert emails."""

from __future__ import annotations

import threading
import zoneinfo
from typing import Any

import pytest
from django.conf import settings
from django.db import close_old_connections

from companies.models import Company, Membership, Role
from conftest import add_member, make_company
from notifications.models import Delivery
from responses.alerts import (
    ResponseFacts,
    alert_rule_save,
    alerts_evaluate,
    comment_has_any,
    normalize_text,
    rule_matches,
)
from responses.models import (
    AlertFiring,
    AlertRule,
    Category,
    Followup,
    FollowupEvent,
    FollowupEventKind,
    Response,
)
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.models import Survey

pytestmark = pytest.mark.django_db


def facts(**overrides: Any) -> ResponseFacts:
    values: dict[str, Any] = {
        "survey_id": 1,
        "score": 3,
        "category": Category.DETRACTOR,
        "comment": "",
        "properties": {},
        "anonymous": False,
        "is_first_of_contact": False,
    }
    values.update(overrides)
    return ResponseFacts(**values)


def rule(**fields: Any) -> AlertRule:
    """An unsaved rule (matching is pure: no database needed)."""
    return AlertRule(name="r", **fields)


def answer(survey: Survey, invitation: Any, score: int, comment: str | None = None) -> Response:
    return response_record(
        invitation=invitation,
        survey=survey,
        score=score,
        comment=comment,
        channel="email",
        language="en",
    )


def html_of(mail: Any) -> str:
    return next(content for content, mime in mail.alternatives if mime == "text/html")


def alert_deliveries(company: Company) -> list[Delivery]:
    return [
        d
        for d in Delivery.objects.for_company(company).order_by("pk")
        if "alert" in (d.metadata or {})
    ]


# --- Matching, condition by condition -------------------------------------------------------------


def test_an_empty_rule_matches_everything_and_a_disabled_one_nothing():
    assert rule_matches(rule(), facts(score=10, category=Category.PROMOTER))
    assert not rule_matches(rule(enabled=False), facts())


def test_category_and_score_range():
    assert rule_matches(rule(category=Category.DETRACTOR), facts(score=6))
    assert not rule_matches(
        rule(category=Category.DETRACTOR), facts(score=7, category=Category.PASSIVE)
    )
    between = rule(score_min=2, score_max=4)
    assert [s for s in range(11) if rule_matches(between, facts(score=s))] == [2, 3, 4]
    assert rule_matches(rule(score_max=0), facts(score=0))
    assert not rule_matches(rule(score_min=9), facts(score=8))


def test_survey_restriction():
    assert rule_matches(rule(survey_id=1), facts(survey_id=1))
    assert not rule_matches(rule(survey_id=2), facts(survey_id=1))


@pytest.mark.parametrize(
    ("words", "comment", "expected"),
    [
        (["refund"], "I want a REFUND now", True),
        (["refund"], "Refunds take ages", False),  # whole words only…
        (["refund*"], "Refunds take ages", True),  # …unless it ends in *
        (["bad"], "Nice badge", False),
        (["плохо"], "Очень ПЛОХО обслужили", True),  # Cyrillic case folded
        (["ОБМАН"], "это обман!", True),
        (["возврат*"], "Проблема с Возвратом денег", True),
        (["ёлка"], "ЕЛКА упала", True),  # ё and е are the same letter to a reader
        (["нашар"], "Қызмет НАШАР болды", True),  # Kazakh
        (["қызмет"], "ҚЫЗМЕТ нашар", True),  # Kazakh capitals fold too
        (["STRASSE"], "die Straße ist gesperrt", True),  # casefold, not lower
        (["long queue"], "A LONG   queue? No: a long queue.", True),  # phrases
        (["slow", "rude"], "Staff were rude", True),  # any of them
        (["slow", "rude"], "All good", False),
        (["  ", "*"], "anything", False),  # blank words match nothing
    ],
)
def test_words_match_case_and_language_insensitively(words, comment, expected):
    assert comment_has_any(comment, words) is expected
    assert rule_matches(rule(words=words), facts(comment=comment)) is expected


def test_normalize_text_folds_width_and_case():
    assert normalize_text("ＡＢＣ Ёж") == "abc еж"


def test_contact_property_equals():
    plan = rule(property_key="plan", property_value="Gold")
    assert rule_matches(plan, facts(properties={"plan": "gold"}))
    assert rule_matches(plan, facts(properties={"plan": " GOLD "}))
    assert not rule_matches(plan, facts(properties={"plan": "silver"}))
    assert not rule_matches(plan, facts(properties={}))
    seats = rule(property_key="seats", property_value="10")
    assert rule_matches(seats, facts(properties={"seats": 10}))


def test_contact_conditions_never_match_anonymous_answers():
    assert not rule_matches(
        rule(property_key="plan", property_value="gold"),
        facts(properties={"plan": "gold"}, anonymous=True),
    )
    assert not rule_matches(
        rule(first_response_only=True), facts(is_first_of_contact=True, anonymous=True)
    )


def test_first_response_of_a_contact(company):
    first_only = alert_rule_save(
        company=company, name="first", first_response_only=True, create_followup=True
    )
    AlertRule.objects.for_company(company).exclude(pk=first_only.pk).delete()
    contact = make_contact(company)
    one, two = make_survey(company, name="One"), make_survey(company, name="Two")
    first = answer(one, make_invitation(one, contact)[0], 9)
    second = answer(two, make_invitation(two, contact)[0], 9)
    assert [f.rule for f in alerts_evaluate(company=company, response_id=first.pk)] == [first_only]
    assert alerts_evaluate(company=company, response_id=second.pk) == []
    # Editing the first answer keeps it the contact's first: still no second alert.
    assert alerts_evaluate(company=company, response_id=first.pk) == []


# --- The default rule -----------------------------------------------------------------------------


def test_a_new_company_gets_the_default_rule(company):
    (default,) = AlertRule.objects.for_company(company)
    assert default.is_default
    assert default.category == Category.DETRACTOR
    assert default.email_roles == [Role.AGENT]
    assert default.create_followup
    assert default.survey is None


def test_a_deleted_default_rule_stays_deleted(company):
    AlertRule.objects.for_company(company).delete()
    survey = make_survey(company)
    response = answer(survey, make_invitation(survey, make_contact(company))[0], 0)
    assert alerts_evaluate(company=company, response_id=response.pk) == []
    assert not AlertRule.objects.for_company(company).exists()


def test_each_company_gets_its_own_default_rule(company, other_company):
    ours = AlertRule.objects.for_company(company).get()
    theirs = AlertRule.objects.for_company(other_company).get()
    assert ours.pk != theirs.pk


@pytest.mark.parametrize(
    ("stored", "language", "shown"),
    [
        ("Every detractor", "ru", "Каждый критик"),
        ("Every detractor", "kk", "Әрбір сыншы"),
        ("Каждый критик", "en", "Every detractor"),  # a company that signed up in Russian
        ("Каждый критик", "kk", "Әрбір сыншы"),
    ],
)
def test_the_default_rule_is_named_in_the_readers_language(
    personas: dict[str, Any], company: Company, stored: str, language: str, shown: str
) -> None:
    # Stored once in the language of the sign-up, it stayed English (or Russian) for everyone.
    from django.urls import reverse

    AlertRule.objects.for_company(company).update(name=stored)
    client = personas["owner"].client
    client.cookies["django_language"] = language
    page = client.get(reverse("inbox:rules", kwargs={"company_slug": company.slug}))
    assert shown in page.content.decode()
    assert stored not in page.content.decode()


def test_a_new_default_rule_is_stored_in_english_and_a_renamed_one_is_shown_as_written(
    personas: dict[str, Any], company: Company
) -> None:
    from django.urls import reverse
    from django.utils import translation

    with translation.override("ru"):
        fresh = make_company("Ромашка", "boss@romashka.test")
    assert AlertRule.objects.for_company(fresh).get().name == "Every detractor"
    AlertRule.objects.for_company(company).update(name="Angry customers")
    client = personas["owner"].client
    client.cookies["django_language"] = "ru"
    page = client.get(reverse("inbox:rules", kwargs={"company_slug": company.slug}))
    assert "Angry customers" in page.content.decode()


# --- End to end: answer saved → task → follow-up and email ----------------------------------------


@pytest.fixture
def agent(company: Company):
    return add_member(company, "agent@acme.test", Role.AGENT)


@pytest.fixture
def setup(company, agent, django_capture_on_commit_callbacks, settings):
    # Who is emailed, and how often: on a score alone, no waiting for a comment here (the
    # wait has its own tests below).
    settings.ALERT_COMMENT_WAIT_SECONDS = 0
    survey = make_survey(company)
    contact = make_contact(company, properties={"plan": "gold"})
    invitation, _token = make_invitation(survey, contact)

    def submit(score: int, comment: str | None = None) -> Response:
        with django_capture_on_commit_callbacks(execute=True):
            return answer(survey, invitation, score, comment)

    return survey, submit


def test_an_alert_on_a_score_alone_waits_for_the_comment_and_carries_it(
    company, agent, setup, settings, mailoutbox
):
    # The answer page records the score at the click; the comment follows. The alert email
    # fired on the click said "Comment: —" and nothing followed when the comment arrived.
    settings.ALERT_COMMENT_WAIT_SECONDS = 120
    _survey, submit = setup
    submit(2)  # the click
    assert Followup.objects.for_company(company).exists()  # the follow-up is at once
    assert alert_deliveries(company) == []
    assert mailoutbox == []
    submit(2, "The barista was rude")  # the comment lands
    (mail,) = mailoutbox
    assert "The barista was rude" in mail.body
    assert "The barista was rude" in html_of(mail)
    # Another edit of the answer sends nothing more.
    submit(1, "The barista was very rude")
    assert len(mailoutbox) == 1
    assert len(alert_deliveries(company)) == 1


def test_an_alert_whose_comment_never_comes_goes_out_when_the_wait_is_over(
    company, agent, setup, settings, mailoutbox
):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from responses.effects import effects_drain

    settings.ALERT_COMMENT_WAIT_SECONDS = 120
    _survey, submit = setup
    with time_machine.travel(timezone.now(), tick=False) as clock:
        submit(0)
        effects_drain()
        assert mailoutbox == []
        clock.shift(timedelta(seconds=119))
        effects_drain()
        assert mailoutbox == []
        clock.shift(timedelta(seconds=2))  # the respondent left without a comment
        assert effects_drain().emails == 1
        effects_drain()
    (mail,) = mailoutbox
    assert "0" in mail.subject
    assert len(alert_deliveries(company)) == 1


def test_an_answer_with_its_comment_alerts_at_once(company, agent, setup, settings, mailoutbox):
    settings.ALERT_COMMENT_WAIT_SECONDS = 120
    _survey, submit = setup
    submit(3, "Cold coffee")
    (mail,) = mailoutbox
    assert "Cold coffee" in mail.body


def test_a_detractor_opens_a_follow_up_and_emails_the_agents(company, agent, setup, mailoutbox):
    _survey, submit = setup
    response = submit(3, "Cold coffee")
    followup = Followup.objects.for_company(company).get()
    assert followup.response == response
    assert followup.score == 3
    # Round-robin: the company's only agent.
    assert followup.assignee is not None
    assert followup.assignee.user == agent
    kinds = list(
        FollowupEvent.objects.for_company(company).order_by("pk").values_list("kind", flat=True)
    )
    assert kinds == [FollowupEventKind.CREATED, FollowupEventKind.ASSIGNED, FollowupEventKind.ALERT]
    (delivery,) = alert_deliveries(company)
    assert delivery.to == agent.email
    (mail,) = mailoutbox
    assert "Score 3" in mail.subject
    assert "Cold coffee" in mail.body
    assert f"/c/{company.slug}/inbox/f/{followup.public_id}/" in mail.body
    assert "Cold coffee" in html_of(mail)
    assert AlertFiring.objects.for_company(company).get().email_status == "sent"


def test_alert_email_is_a_styled_card_with_a_text_part_and_local_time(
    company, agent, setup, mailoutbox
):
    company.time_zone = "Asia/Almaty"
    company.save(update_fields=["time_zone"])
    _survey, submit = setup
    response = submit(3, "Cold coffee")
    (mail,) = mailoutbox
    html = html_of(mail)
    # The card of the project's other HTML emails (invitation, digest): a table layout,
    # the score in its category's colour, a button to the follow-up.
    assert "background-color:#f4f5fa" in html
    assert 'role="presentation"' in html
    assert 'data-alert="score"' in html
    assert "#b91c1c" in html  # a detractor
    assert 'style="display:inline-block;padding:10px 18px' in html
    assert f"/inbox/f/{Followup.objects.for_company(company).get().public_id}/" in html
    # The plain-text part is kept, and both give the answer's time in the company's zone.
    assert "Cold coffee" in mail.body
    assert "<" not in mail.body.replace("<https", "")
    local = response.created_at.astimezone(zoneinfo.ZoneInfo("Asia/Almaty"))
    for part in (mail.body, html):
        assert f"{local:%H:%M} — Asia/Almaty (UTC+05:00)" in part


def test_promoters_and_passives_raise_nothing(company, setup):
    _survey, submit = setup
    submit(9)
    submit(7)
    assert not Followup.objects.for_company(company).exists()
    assert not alert_deliveries(company)


def test_an_edit_crossing_into_detractor_alerts_once(company, setup):
    _survey, submit = setup
    submit(8, "Fine")
    assert not Followup.objects.for_company(company).exists()
    submit(5)  # crosses into detractor: one alert
    submit(2)  # still a detractor: no second one
    submit(9)  # leaves…
    submit(4)  # …and comes back: the rule already alerted on this response
    assert AlertFiring.objects.for_company(company).count() == 1
    assert Followup.objects.for_company(company).count() == 1
    assert len(alert_deliveries(company)) == 1
    followup = Followup.objects.for_company(company).get()
    assert followup.score == 4
    changes = [
        e.data["score"]
        for e in FollowupEvent.objects.for_company(company).order_by("pk")
        if e.kind == FollowupEventKind.ANSWER_CHANGED
    ]
    assert changes == [[5, 2], [2, 9], [9, 4]]


def test_a_comment_added_later_updates_the_follow_up_not_a_new_alert(company, setup):
    _survey, submit = setup
    submit(2)  # the score page records the score alone first
    submit(2, "Nobody answered the phone")
    assert len(alert_deliveries(company)) == 1
    followup = Followup.objects.for_company(company).get()
    assert followup.seen_comment == "Nobody answered the phone"
    event = FollowupEvent.objects.for_company(company).get(kind=FollowupEventKind.ANSWER_CHANGED)
    assert event.body == "Nobody answered the phone"
    assert event.data == {"comment": "Nobody answered the phone"}


def test_two_rules_two_alerts_one_follow_up(company, agent, setup):
    alert_rule_save(
        company=company,
        name="Words",
        words=["phone"],
        email_addresses=["cx-lead@acme.test"],
        create_followup=True,
    )
    _survey, submit = setup
    submit(1, "Nobody answered the PHONE")
    assert AlertFiring.objects.for_company(company).count() == 2
    assert Followup.objects.for_company(company).count() == 1
    assert sorted(d.to for d in alert_deliveries(company)) == [
        "agent@acme.test",
        "cx-lead@acme.test",
    ]
    alerts = FollowupEvent.objects.for_company(company).filter(kind=FollowupEventKind.ALERT)
    assert sorted(e.body for e in alerts) == ["Every detractor", "Words"]


def test_a_rule_without_follow_up_only_emails(company, setup):
    AlertRule.objects.for_company(company).update(create_followup=False)
    _survey, submit = setup
    submit(0)
    assert not Followup.objects.for_company(company).exists()
    assert len(alert_deliveries(company)) == 1


def test_a_rule_for_another_survey_does_not_fire(company, setup):
    other = make_survey(company, name="Other")
    AlertRule.objects.for_company(company).update(survey=other)
    _survey, submit = setup
    submit(0)
    assert not AlertFiring.objects.for_company(company).exists()


def test_alert_email_goes_out_in_each_members_language(company, agent, setup, mailoutbox):
    agent.language = "ru"
    agent.save(update_fields=["language"])
    add_member(company, "agent2@acme.test", Role.AGENT)
    _survey, submit = setup
    submit(3)
    mails = {m.to[0]: m for m in mailoutbox}
    assert set(mails) == {"agent@acme.test", "agent2@acme.test"}
    assert 'lang="ru"' in html_of(mails["agent@acme.test"])
    assert 'lang="en"' in html_of(mails["agent2@acme.test"])


def test_nobody_to_email_falls_back_to_the_owners(company, setup):
    """A new company has no agents yet: its owner gets the default rule's alert."""
    Membership.objects.for_company(company).filter(role=Role.AGENT).delete()
    _survey, submit = setup
    submit(3)
    assert [d.to for d in alert_deliveries(company)] == ["owner@acme.test"]
    assert Followup.objects.for_company(company).get().assignee is None


def test_anonymous_survey_alert_reveals_nobody(
    company, agent, django_capture_on_commit_callbacks, mailoutbox
):
    survey = make_survey(company, anonymous=True)
    contact = make_contact(company, email="secret-employee@acme.test", name="Secret Name")
    invitation, _token = make_invitation(survey, contact)
    with django_capture_on_commit_callbacks(execute=True):
        answer(survey, invitation, 1, "My manager")
    (mail,) = mailoutbox
    for part in (mail.subject, mail.body, html_of(mail)):
        assert "secret-employee" not in part
        assert "Secret Name" not in part
    assert "anonymous" in mail.body.lower()


def test_round_robin_cycles_through_the_agents(company, django_capture_on_commit_callbacks):
    agents = [add_member(company, f"rr{i}@acme.test", Role.AGENT) for i in range(3)]
    survey = make_survey(company)
    for i in range(4):
        invitation, _t = make_invitation(survey, make_contact(company, email=f"c{i}@customer.test"))
        with django_capture_on_commit_callbacks(execute=True):
            answer(survey, invitation, 2)
    assignees = [
        f.assignee.user if f.assignee else None
        for f in Followup.objects.for_company(company).order_by("created_at", "pk")
    ]
    assert assignees == [agents[0], agents[1], agents[2], agents[0]]


def test_a_redelivered_task_sends_a_pending_email_once(company, agent, setup, monkeypatch):
    """A worker that died after the ledger commit but before the send: the next run sends."""
    from responses import effects
    from responses.tasks import alert_evaluate

    calls: list[int] = []
    real = effects.alert_emails_send_pending

    def crash(**kwargs: Any) -> int:
        calls.append(1)
        raise RuntimeError("worker lost")

    monkeypatch.setattr(effects, "alert_emails_send_pending", crash)
    _survey, submit = setup
    with pytest.raises(RuntimeError):
        submit(3)
    assert AlertFiring.objects.for_company(company).get().email_status == "pending"
    assert not alert_deliveries(company)
    monkeypatch.setattr(effects, "alert_emails_send_pending", real)
    response = Response.objects.for_company(company).get()
    alert_evaluate.apply(args=(company.pk, response.pk))
    alert_evaluate.apply(args=(company.pk, response.pk))
    assert len(alert_deliveries(company)) == 1
    assert calls == [1]


def test_the_task_is_routed_to_the_alerts_queue():
    from celery import current_app

    from responses.tasks import alert_escalate_overdue, alert_evaluate

    router = current_app.amqp.router
    for task in (alert_evaluate, alert_escalate_overdue):
        assert router.route({}, task.name)["queue"].name == "alerts"
    entries = [e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()]
    assert "responses.alert_escalate_overdue" in entries


def test_rule_save_refuses_another_companys_survey(company, other_company):
    theirs = make_survey(other_company)
    with pytest.raises(ValueError, match="another company"):
        alert_rule_save(company=company, name="x", survey=theirs)


# --- Exactly once under concurrent edits ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_alert_exactly_once():
    """Four submits of the same invitation race, each committing and evaluating the rules in
    its own connection (eager tasks): one ledger row, one follow-up, one email."""
    company = make_company("Race Cafe", "owner@race.test")
    add_member(company, "agent@race.test", Role.AGENT)
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def submit(score: int) -> None:
        try:
            barrier.wait()
            answer(survey, invitation, score, f"comment {score}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=submit, args=(s,)) for s in (0, 2, 4, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Response.objects.for_company(company).count() == 1
    assert AlertFiring.objects.for_company(company).count() == 1
    assert Followup.objects.for_company(company).count() == 1
    assert len(alert_deliveries(company)) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_of_one_response_alert_exactly_once():
    company = make_company("Race Tea", "owner@racetea.test")
    add_member(company, "agent@racetea.test", Role.AGENT)
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    response = answer(survey, invitation, 1, "bad")  # committed; the tasks below race
    AlertFiring.objects.for_company(company).delete()
    Followup.objects.for_company(company).delete()
    Delivery.objects.for_company(company).delete()
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            barrier.wait()
            alerts_evaluate(company=company, response_id=response.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=evaluate) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert AlertFiring.objects.for_company(company).count() == 1
    assert Followup.objects.for_company(company).count() == 1
    assert len(alert_deliveries(company)) == 1


# --- A provider outage: the task retries and sends only what is left -------------------------


def test_a_transient_provider_error_is_retried_without_sending_twice(
    company, agent, setup, settings
):
    """Real anymail Postmark backend, fake HTTP: the Russian agent's call fails with a 503 the
    first time. The task asks Celery for a retry; running it again (what the retry does)
    sends the rest, and the English agent, already sent, is not emailed again."""
    from unittest import mock

    import requests
    from celery.exceptions import Retry

    from notifications.tests.test_email import POSTMARK, FakePostmark, accept_all, anymail_settings
    from responses.tasks import alert_evaluate

    for name, value in POSTMARK.items():
        setattr(settings, name, value)
    settings.ANYMAIL = anymail_settings(bulk=False)
    agent.language = "ru"
    agent.save(update_fields=["language"])
    add_member(company, "agent2@acme.test", Role.AGENT)
    failures = {"agent@acme.test": 1}

    def respond(endpoint: str, body: Any) -> tuple[int, Any]:
        to = body["To"] if isinstance(body, dict) else body[0]["To"]
        if failures.get(to):
            failures[to] -= 1
            return 503, {"ErrorCode": 500, "Message": "try later"}
        return accept_all(endpoint, body)

    fake = FakePostmark(respond=respond)
    with mock.patch.object(
        requests.adapters.HTTPAdapter, "send", autospec=True, side_effect=fake.send
    ):
        _survey, submit = setup
        with pytest.raises(Retry) as retry:
            submit(3)
        assert retry.value.when == 30  # the first backoff step
        assert AlertFiring.objects.for_company(company).get().email_status == "pending"
        response = Response.objects.for_company(company).get()
        alert_evaluate.apply(args=(company.pk, response.pk), retries=1)
    recipients = [
        body["To"] if isinstance(body, dict) else body[0]["To"] for _endpoint, body in fake.calls
    ]
    assert sorted(recipients) == ["agent2@acme.test", "agent@acme.test", "agent@acme.test"]
    firing = AlertFiring.objects.for_company(company).get()
    assert firing.email_status == "sent"
    statuses = sorted((d.to, d.status) for d in alert_deliveries(company))
    assert statuses == [("agent2@acme.test", "sent"), ("agent@acme.test", "sent")]


def test_chosen_members_and_roles_are_emailed_once_each(company, agent, setup):
    admin = add_member(company, "admin@acme.test", Role.ADMIN)
    chosen = Membership.objects.for_company(company).get(user=admin)
    AlertRule.objects.for_company(company).update(
        email_roles=[Role.AGENT.value, Role.ADMIN.value],
        email_member_ids=[chosen.public_id],  # also an admin: still one email
        email_addresses=["Agent@Acme.test"],  # also the agent: still one email
    )
    _survey, submit = setup
    submit(3)
    assert sorted(d.to for d in alert_deliveries(company)) == ["admin@acme.test", "agent@acme.test"]
