"""The widget's public endpoints: every rule of "should I show?", answers as real responses,
CORS, identity verification, rate limits, hostile text, and tenancy."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from companies.models import Company
from responses.models import Followup, Response
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.models import Contact, Survey
from widget import views_public
from widget.models import WidgetView
from widget.selectors import widget_key_cache_clear
from widget.services import identity_signature
from widget.tests.helpers import ORIGIN, PAGE, answer, call, dismiss, enable, show

pytestmark = pytest.mark.django_db


@pytest.fixture
def survey(company: Company) -> Survey:
    return make_survey(company, accent_color="#112233")


def _shown(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    body = response.json()
    assert body["show"] is True, body
    return body


def _not_shown(response: Any, reason: str) -> None:
    assert response.status_code == 200, response.content
    assert response.json() == {"show": False, "reason": reason}


def test_an_identified_user_answers_and_it_is_a_real_response(
    company: Company, survey: Survey, django_capture_on_commit_callbacks: Any
) -> None:
    widget = enable(company, survey)
    body = _shown(
        show(
            widget,
            email="Ann@Customer.test",
            name="Ann",
            external_id="u-42",
            properties={"plan": "pro", "seats": 12},
        )
    )
    assert body["texts"]["question"].startswith("How likely")
    assert body["accent"] == "#112233"
    assert body["delay"] == 0
    contact = Contact.objects.for_company(company).get()
    assert (contact.email, contact.name, contact.external_id) == (
        "ann@customer.test",
        "Ann",
        "u-42",
    )
    assert contact.properties == {"plan": "pro", "seats": 12}

    with django_capture_on_commit_callbacks(execute=True):
        assert answer(widget, body["ticket"], 3).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert answer(widget, body["ticket"], 3, "Too slow").status_code == 200

    saved = Response.objects.for_company(company).get()
    assert (saved.score, saved.comment, saved.channel) == (3, "Too slow", "widget")
    assert saved.contact == contact
    assert saved.invitation_properties == {"plan": "pro", "seats": 12, "page_url": PAGE}
    # The default alert rule (every detractor) opened a follow-up.
    assert Followup.objects.for_company(company).filter(response=saved).exists()


def test_answered_people_are_not_asked_again_within_the_throttle(
    company: Company, survey: Survey
) -> None:
    widget = enable(company, survey)
    ticket = _shown(show(widget, email="ann@customer.test"))["ticket"]
    answer(widget, ticket, 9)
    _not_shown(show(widget, email="ann@customer.test"), "throttled")
    # Another person still is.
    _shown(show(widget, email="bob@customer.test"))


def test_the_throttle_spans_email_and_sms_sends(company: Company, survey: Survey) -> None:
    widget = enable(company, survey)
    contact = make_contact(company, email="ann@customer.test")
    make_invitation(survey, contact)
    _not_shown(show(widget, email="ann@customer.test"), "throttled")


def test_an_answer_on_another_channel_throttles_the_widget(
    company: Company, survey: Survey
) -> None:
    widget = enable(company, survey)
    contact = make_contact(company, email="ann@customer.test")
    other = make_survey(company, name="Other")
    response_record(
        invitation=None, survey=other, score=8, channel="link", language="en",
        contact=contact, browser_key="b" * 64,
    )  # fmt: skip
    _not_shown(show(widget, email="ann@customer.test"), "throttled")


def test_a_dismissal_rests_for_its_cooldown(company: Company, survey: Survey) -> None:
    widget = enable(company, survey, dismissal_cooldown_days=7)
    ticket = _shown(show(widget, email="ann@customer.test"))["ticket"]
    assert dismiss(widget, ticket).status_code == 200
    _not_shown(show(widget, email="ann@customer.test"), "throttled")
    WidgetView.objects.for_company(company).update(dismissed_at=timezone.now() - timedelta(days=8))
    _shown(show(widget, email="ann@customer.test"))


def test_anonymous_visitors_rest_by_their_browser_id(company: Company, survey: Survey) -> None:
    widget = enable(company, survey, anonymous_cooldown_days=30)
    ticket = _shown(show(widget, visitor="a" * 32))["ticket"]
    answer(widget, ticket, 10, "Great")
    _not_shown(show(widget, visitor="a" * 32), "throttled")
    _shown(show(widget, visitor="b" * 32))
    saved = Response.objects.for_company(company).get()
    assert saved.contact is None
    assert saved.invitation_properties == {"page_url": PAGE}


def test_sampling_is_stable_per_person(company: Company, survey: Survey) -> None:
    widget = enable(company, survey, sample_percent=0)
    _not_shown(show(widget, email="ann@customer.test"), "sample")
    enable(company, survey, sample_percent=50)
    seen = {
        email: show(widget, visitor=email * 2, email=email).json()["show"]
        for email in (f"p{n}@customer.test" for n in range(40))
    }
    assert 5 < sum(seen.values()) < 35
    # Asking again gives the same verdict (the shown ones never answered: shown again).
    for email, shown in list(seen.items())[:10]:
        assert show(widget, visitor=email * 2, email=email).json()["show"] is shown


def test_new_users_are_not_asked_too_soon(company: Company, survey: Survey) -> None:
    widget = enable(company, survey, min_days_since_created=14)
    recent = (timezone.now() - timedelta(days=3)).isoformat()
    _not_shown(show(widget, email="ann@customer.test", created_at=recent), "too_new")
    old = int((timezone.now() - timedelta(days=30)).timestamp())
    _shown(show(widget, email="ann@customer.test", created_at=old))


def test_url_rules(company: Company, survey: Survey) -> None:
    widget = enable(company, survey, url_contains=["/app/"], url_not_contains=["billing"])
    _not_shown(show(widget), "url")  # PAGE contains billing
    enable(company, survey, url_not_contains=["checkout"])
    _shown(show(widget))
    enable(company, survey, url_contains=["/dashboard"], url_not_contains=[])
    _not_shown(show(widget, visitor="c" * 32), "url")


def test_language_from_locale_contact_or_page(company: Company, survey: Survey) -> None:
    widget = enable(company, survey)
    body = _shown(show(widget, email="a@customer.test", locale="ru"))
    assert body["language"] == "ru"
    assert body["texts"]["send"] == "Отправить"
    make_contact(company, email="k@customer.test", language="kk")
    assert _shown(show(widget, email="k@customer.test"))["language"] == "kk"
    page_lang = call(
        "show", {"key": widget.publishable_key, "visitor": "d" * 32, "url": PAGE, "lang": "ru-RU"}
    )
    assert _shown(page_lang)["language"] == "ru"


def test_other_origins_unknown_keys_and_closed_surveys_get_nothing(
    company: Company, survey: Survey
) -> None:
    widget = enable(company, survey)
    body = {"key": widget.publishable_key, "visitor": "v" * 32, "url": PAGE}
    for origin in ("https://evil.test", None, "https://shop.test.evil.test"):
        refused = call("show", body, origin=origin)
        assert refused.status_code == 403
        assert "Access-Control-Allow-Origin" not in refused
    assert call("show", {**body, "key": "wpk_nope"}).status_code == 404
    enable(company, survey, enabled=False)
    assert call("show", body).status_code == 404
    enable(company, survey, enabled=True)
    survey.status = "paused"
    survey.save()
    widget_key_cache_clear()  # as KEY_CACHE_SECONDS later
    assert call("show", body).status_code == 404
    assert WidgetView.objects.for_company(company).count() == 0


def test_preflight_is_answered_only_for_allowed_origins(company: Company, survey: Survey) -> None:
    enable(company, survey)
    client = Client()
    ok = client.options("/w/show/", HTTP_ORIGIN=ORIGIN)
    assert ok.status_code == 204
    assert ok["Access-Control-Allow-Origin"] == ORIGIN
    refused = client.options("/w/show/", HTTP_ORIGIN="https://evil.test")
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused


def test_identity_verification_refuses_unsigned_identified_calls(
    company: Company, survey: Survey
) -> None:
    widget = enable(company, survey, verify_identity=True)
    refused = show(widget, email="ann@customer.test")
    assert refused.status_code == 403
    assert refused.json() == {"show": False, "error": "signature"}
    assert show(widget, email="ann@customer.test", signature="0" * 64).status_code == 403
    assert not Contact.objects.for_company(company).exists()
    good = identity_signature(company=company, identity="ann@customer.test")
    _shown(show(widget, email="Ann@customer.test", signature=good))
    by_id = identity_signature(company=company, identity="u-7")
    _shown(show(widget, email="bob@customer.test", external_id="u-7", signature=by_id))
    # Anonymous visitors need no signature.
    _shown(show(widget, visitor="e" * 32))


def test_a_signature_of_another_company_is_refused(
    company: Company, other_company: Company, survey: Survey
) -> None:
    widget = enable(company, survey, verify_identity=True)
    theirs = identity_signature(company=other_company, identity="ann@customer.test")
    assert show(widget, email="ann@customer.test", signature=theirs).status_code == 403


def test_rate_limits_per_visitor_and_per_key(
    company: Company, survey: Survey, monkeypatch: pytest.MonkeyPatch
) -> None:
    widget = enable(company, survey, sample_percent=0)
    monkeypatch.setattr(views_public, "CALLS_PER_VISITOR", 2)
    assert show(widget, visitor="r" * 32).status_code == 200
    assert show(widget, visitor="r" * 32).status_code == 200
    limited = show(widget, visitor="r" * 32)
    assert limited.status_code == 429
    assert limited["Access-Control-Allow-Origin"] == ORIGIN
    monkeypatch.setattr(views_public, "CALLS_PER_KEY", 0)
    assert show(widget, visitor="s" * 32).status_code == 429


@pytest.mark.parametrize(
    "raw",
    [
        b'{"key": "x\\u0000", "visitor": "vvvvvvvvvvvvvvvvvvvv"}',
        b'{"key": "k", "visitor": "\\udfff"}',
        b"not json",
        b"[1, 2]",
        b'{"key": "k", "person": {"properties": {"a": {"b": 1}}}}',
    ],
)
def test_hostile_bodies_are_refused(company: Company, survey: Survey, raw: bytes) -> None:
    widget = enable(company, survey)
    raw = raw.replace(b'"k"', json.dumps(widget.publishable_key).encode())
    assert call("show", {}, raw=raw).status_code in (400, 404)
    assert WidgetView.objects.for_company(company).count() == 0


def test_unstorable_properties_and_comments_are_refused(company: Company, survey: Survey) -> None:
    widget = enable(company, survey)
    body = {
        "key": widget.publishable_key,
        "visitor": "v" * 32,
        "person": {"email": "a@customer.test", "properties": {"plan": "a\x00b"}},
    }
    assert call("show", body).status_code == 400
    ticket = _shown(show(widget))["ticket"]
    raw = json.dumps(
        {"key": widget.publishable_key, "ticket": ticket, "score": 5, "comment": "\udfff"}
    ).encode()
    assert call("answer", {}, raw=raw).status_code == 400
    assert answer(widget, ticket, 11).status_code == 400
    assert answer(widget, ticket, True).status_code == 400
    assert not Response.objects.for_company(company).exists()


def test_a_key_of_one_company_never_reaches_another(
    company: Company, other_company: Company, survey: Survey
) -> None:
    ours = enable(company, survey)
    theirs = enable(other_company, make_survey(other_company))
    their_ticket = _shown(show(theirs, email="ann@customer.test"))["ticket"]
    answer(theirs, their_ticket, 9, "Theirs")
    our_ticket = _shown(show(ours, email="ann@customer.test"))["ticket"]
    # Our key with their ticket (and theirs with ours): unknown, nothing written.
    assert answer(ours, their_ticket, 0, "Hijack").status_code == 404
    assert dismiss(ours, their_ticket).status_code == 404
    assert answer(theirs, our_ticket, 0).status_code == 404
    assert Response.objects.for_company(company).count() == 0
    kept = Response.objects.for_company(other_company).get()
    assert (kept.score, kept.comment) == (9, "Theirs")
    # Each company got its own contact.
    assert Contact.objects.for_company(company).count() == 1
    assert Contact.objects.for_company(other_company).count() == 1


def test_the_script_is_small_versioned_and_cached(client: Client) -> None:
    version = views_public.script_version()
    current = client.get(f"/w/nps.js?v={version}")
    assert current.status_code == 200
    assert current["Content-Type"].startswith("text/javascript")
    assert current["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/w/nps.js")["Cache-Control"] == "public, max-age=300"
    assert len(gzip.compress(views_public.script_body())) <= 15 * 1024
    # Our own code only: no address of another host in it.
    assert b"http://" not in views_public.script_body()
    assert b"https://" not in views_public.script_body().replace(b"https://OUR-HOST", b"")


def test_widget_answers_appear_in_v1_survey_responses(company: Company) -> None:
    import base64

    from companies.services import api_key_create
    from delighted_compat.api.services import project_survey

    created = api_key_create(company=company, name="d")
    survey = project_survey(api_key=created.api_key)
    survey.status = "active"
    survey.save()
    widget = enable(company, survey)
    ticket = _shown(show(widget, email="ann@customer.test", properties={"plan": "pro"}))["ticket"]
    answer(widget, ticket, 6, "Meh")
    auth = "Basic " + base64.b64encode(created.key.encode()).decode()
    [row] = Client().get("/v1/survey_responses", HTTP_AUTHORIZATION=auth).json()
    assert (row["score"], row["comment"]) == (6, "Meh")
    assert row["person_properties"] == {"plan": "pro", "page_url": PAGE}


def test_widget_answers_count_in_the_dashboards_by_channel(
    company: Company, survey: Survey
) -> None:
    from dashboards.selectors import metrics_for

    widget = enable(company, survey)
    for n, score in enumerate((10, 3)):
        ticket = _shown(show(widget, visitor=f"{n}" * 32))["ticket"]
        answer(widget, ticket, score)
    response_record(
        invitation=None, survey=survey, score=9, channel="link", language="en",
        browser_key="c" * 64,
    )  # fmt: skip
    figures = metrics_for(company=company, survey=survey, channel="widget", segment="channel")
    assert figures["response_count"] == 2
    everything = metrics_for(company=company, survey=survey, segment="channel")
    names = {s["value"]: (s["name"], s["response_count"]) for s in everything["segments"] or []}
    assert names["widget"] == ("Web widget", 2)
    assert names["link"] == ("Web link", 1)


def test_sends_skip_people_who_answered_in_the_widget(company: Company, survey: Survey) -> None:
    from surveys.services.invitations import throttled_contact_ids

    widget = enable(company, survey)
    ticket = _shown(show(widget, email="ann@customer.test"))["ticket"]
    bob = make_contact(company, email="bob@customer.test")
    ann = Contact.objects.for_company(company).get(email="ann@customer.test")
    ids = [ann.pk, bob.pk]
    now = timezone.now() + timedelta(seconds=1)
    assert throttled_contact_ids(company=company, survey=survey, contact_ids=ids, at=now) == set()
    answer(widget, ticket, 8)
    later = timezone.now() + timedelta(seconds=1)
    assert throttled_contact_ids(company=company, survey=survey, contact_ids=ids, at=later) == {
        ann.pk
    }
    # Beyond the survey's window, asked again.
    beyond = later + timedelta(days=survey.throttle_days + 1)
    assert (
        throttled_contact_ids(company=company, survey=survey, contact_ids=ids, at=beyond) == set()
    )


def test_recurring_asks_skip_people_who_answered_in_the_widget(
    company: Company, survey: Survey
) -> None:
    from surveys.services.autopilot import (
        autopilot_configure,
        autopilot_dispatch_due,
        autopilot_member_add,
    )

    autopilot_configure(
        company=company,
        survey=survey,
        channel="email",
        active=True,
        cadence_days=90,
        first_delay_days=0,
    )
    widget = enable(company, survey)
    answer(widget, _shown(show(widget, email="ann@customer.test"))["ticket"], 8)
    ann = Contact.objects.for_company(company).get(email="ann@customer.test")
    bob = make_contact(company, email="bob@customer.test")
    for person in (ann, bob):
        autopilot_member_add(company=company, survey=survey, channel="email", contact=person)
    outcome = autopilot_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    # Ann answered in the widget a moment ago: her recurring ask moves on; Bob is asked.
    assert (outcome.asked, outcome.throttled) == (1, 1)


def test_show_and_answer_of_a_new_person_take_few_queries(
    company: Company, survey: Survey, django_assert_num_queries: Any
) -> None:
    widget = enable(company, survey)
    _shown(show(widget, email="first@customer.test", visitor="f" * 32))  # the key is read
    # Contact lookup, then the upsert (lookup, insert, in a savepoint), the showing.
    with django_assert_num_queries(6):
        body = _shown(show(widget, email="new@customer.test", name="New", visitor="n" * 32))
    # The showing, the response inserted straight away (a savepoint inside the answer's
    # transaction), the showing marked answered.
    with django_assert_num_queries(7):
        assert answer(widget, body["ticket"], 8).status_code == 200


def test_a_known_person_is_checked_for_rest_in_one_query(
    company: Company, survey: Survey, django_assert_num_queries: Any
) -> None:
    widget = enable(company, survey, dismissal_cooldown_days=30)
    make_contact(company, email="known@customer.test")
    _shown(show(widget, email="other@customer.test", visitor="o" * 32))  # the key is read
    # The contact; "surveyed lately? dismissed lately?" in one query; the showing.
    with django_assert_num_queries(3):
        body = _shown(show(widget, email="known@customer.test", visitor="k" * 32))
    assert dismiss(widget, body["ticket"]).status_code == 200
    with django_assert_num_queries(2):
        _not_shown(show(widget, email="known@customer.test", visitor="k" * 32), "throttled")
