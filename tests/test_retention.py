"""Data retention (nps_saas/retention.py): per company, personal data older than N months is
anonymised or deleted by a daily job; the figures stay right; other companies are untouched."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from celery.schedules import crontab
from django.apps import apps
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import close_old_connections, connection, models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from companies.models import Company, RetentionRun, Role
from companies.retention import RETENTION_KINDS, in_batches, retention_cutoff
from conftest import KeyPersona, Persona, make_company
from dashboards.selectors import metrics_for
from dashboards.services import rollup_rebuild
from delighted_compat.models import DelightedImport, DelightedResponse
from notifications.models import Delivery, DeliveryEvent, DeliveryStatus
from notifications.webhooks_models import MessageKind, MessageStatus, WebhookAttempt, WebhookMessage
from nps_saas.retention import COVERED, EXEMPT, STEPS, retention_apply
from nps_saas.scheduler import EmbeddedScheduler
from nps_saas.tasks import retention_run_due
from responses.alerts import alert_rule_create_default
from responses.models import (
    AlertFiring,
    AlertRule,
    Followup,
    FollowupEvent,
    FollowupEventKind,
    Response,
)
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.models import ContactImport, ImportStatus, Invitation, InvitationEvent, Survey
from tests.conftest import CeleryWorker
from tests.project_apps import project_apps
from widget.models import WidgetView

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=420)  # ~14 months ago
RECENT = NOW - timedelta(days=20)


# --- Every model is accounted for ------------------------------------------------------------


def _timestamped_models() -> set[str]:
    labels = set()
    for app_label in sorted(project_apps()):
        for model in apps.get_app_config(app_label).get_models():
            if model._meta.proxy:
                continue
            if any(isinstance(f, models.DateTimeField) for f in model._meta.concrete_fields):
                labels.add(f"{model._meta.app_label}.{model.__name__}")
    return labels


def test_the_project_apps_are_found_from_the_installed_apps() -> None:
    found = project_apps()
    assert {"companies", "surveys", "nps_saas", "audit", "privacy", "sso", "widget"} <= found
    assert not found & {"account", "mfa", "socialaccount", "saml", "rest_framework", "admin"}


def test_every_model_with_a_timestamp_is_covered_or_exempt() -> None:
    """A new model with dates (and so, likely, data about people) must say what retention does
    with it: add it to nps_saas/retention.py's COVERED (with a step) or EXEMPT (with a why)."""
    missing = _timestamped_models() - set(COVERED) - set(EXEMPT)
    assert not missing, f"not covered by retention nor exempted: {sorted(missing)}"
    assert not set(COVERED) & set(EXEMPT)


def test_the_policy_names_only_real_models() -> None:
    for label in [*COVERED, *EXEMPT]:
        apps.get_model(label)  # raises LookupError for a removed or renamed model


def test_every_step_has_a_label_for_the_settings_page() -> None:
    assert [kind for kind, _step in STEPS] == list(RETENTION_KINDS)


def test_the_cutoff_counts_calendar_months() -> None:
    assert retention_cutoff(now=datetime(2026, 3, 31, tzinfo=UTC), months=1) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert retention_cutoff(now=NOW, months=12) == datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


# --- One of everything, at a given time --------------------------------------------------------


@dataclass
class Seeded:
    survey: Survey
    response: Response
    invitation: Invitation
    followup: Followup
    firing: AlertFiring
    delivery: Delivery
    message: WebhookMessage
    contact_import: ContactImport
    delighted_import: DelightedImport
    delighted: DelightedResponse
    widget_view: WidgetView
    token: str


def seed(company: Company, at: datetime, *, tag: str, survey: Survey | None = None) -> Seeded:
    """An answered invitation with everything that hangs off it, all made at ``at``."""
    with time_machine.travel(at, tick=False):
        survey = survey or make_survey(company, name=f"Survey {tag}")
        contact = make_contact(company, email=f"{tag}@customer.test", properties={"plan": "gold"})
        invitation, token = make_invitation(survey, contact, properties={"order": f"A-{tag}"})
        response = response_record(
            invitation=invitation,
            survey=survey,
            score=3,
            comment=f"The courier {tag} was rude",
            channel="email",
            language="en",
        )
        InvitationEvent.objects.create(
            company=company, invitation=invitation, event="opened", detail=f"{tag}@customer.test"
        )
        followup = Followup.objects.create(
            company=company, response=response, survey=survey, score=3, due_at=at
        )
        FollowupEvent.objects.create(
            company=company, followup=followup, kind=FollowupEventKind.NOTE, body="Call her"
        )
        rule = AlertRule.objects.for_company(company).first() or alert_rule_create_default(
            company=company
        )
        firing = AlertFiring.objects.create(
            company=company,
            rule=rule,
            response=response,
            score=3,
            email_status=AlertFiring.EmailStatus.SENT,
            deliveries={"boss@company.test": 1},
        )
        delivery = Delivery.objects.create(
            company=company,
            channel="email",
            to=f"{tag}@customer.test",
            subject="How did we do?",
            status=DeliveryStatus.DELIVERED,
        )
        DeliveryEvent.objects.create(company=company, delivery=delivery, event="delivered")
        message = WebhookMessage.objects.create(
            company=company,
            kind=MessageKind.SLACK,
            url="https://hooks.slack.test/x",
            event_type="response.created",
            payload={"comment": f"The courier {tag} was rude"},
            status=MessageStatus.DELIVERED,
        )
        WebhookAttempt.objects.create(company=company, message=message, number=1, succeeded=True)
        contact_import = ContactImport.objects.create(
            company=company,
            file=ContentFile(f"email\n{tag}@customer.test\n", name="upload.csv"),
            file_name="customers.csv",
            status=ImportStatus.DONE,
            error_report=ContentFile("email,error\n", name="errors.csv"),
        )
        delighted_import = DelightedImport.objects.create(
            company=company,
            batch=f"b-{tag}",
            file=ContentFile("Score\n3\n", name="delighted.csv"),
            file_name="delighted.csv",
            status="done",
        )
        delighted = DelightedResponse.objects.create(
            company=company,
            response=response,
            delighted_id=f"d-{tag}",
            person_id=f"p-{tag}",
            notes=[{"text": "VIP"}],
        )
        widget_view = WidgetView.objects.create(
            company=company,
            survey=survey,
            ticket_hash=f"ticket-{tag}",
            contact=contact,
            page_url="https://shop.test/orders/17",
        )
    return Seeded(
        survey,
        response,
        invitation,
        followup,
        firing,
        delivery,
        message,
        contact_import,
        delighted_import,
        delighted,
        widget_view,
        token,
    )


def untouched(seeded: Seeded) -> None:
    """Everything of ``seeded`` is still there as it was made."""
    response = Response.objects.for_company(seeded.survey.company).get(pk=seeded.response.pk)
    assert response.comment.startswith("The courier")
    assert response.contact_id is not None
    assert response.invitation_id == seeded.invitation.pk
    assert response.contact_properties == {"plan": "gold"}
    company = seeded.survey.company
    assert Followup.objects.for_company(company).filter(pk=seeded.followup.pk).exists()
    assert FollowupEvent.objects.for_company(company).filter(followup=seeded.followup).exists()
    firing = AlertFiring.objects.for_company(company).get(pk=seeded.firing.pk)
    assert firing.deliveries == {"boss@company.test": 1}
    invitation = Invitation.objects.for_company(company).get(pk=seeded.invitation.pk)
    assert invitation.properties
    assert InvitationEvent.objects.for_company(company).filter(invitation=invitation).exists()
    assert Delivery.objects.for_company(company).filter(pk=seeded.delivery.pk).exists()
    assert DeliveryEvent.objects.for_company(company).filter(delivery=seeded.delivery).exists()
    assert WebhookMessage.objects.for_company(company).filter(pk=seeded.message.pk).exists()
    assert WebhookAttempt.objects.for_company(company).filter(message=seeded.message).exists()
    assert ContactImport.objects.for_company(company).filter(pk=seeded.contact_import.pk).exists()
    assert Path(seeded.contact_import.file.path).exists()
    assert Path(seeded.delighted_import.file.path).exists()
    delighted = DelightedResponse.objects.for_company(company).get(pk=seeded.delighted.pk)
    assert delighted.notes
    assert delighted.person_id
    assert WidgetView.objects.for_company(company).filter(pk=seeded.widget_view.pk).exists()


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def with_retention(company: Company, months: int | None) -> Company:
    company.retention_months = months
    company.save(update_fields=["retention_months"])
    return company


# --- The policy, applied ---------------------------------------------------------------------


@pytest.mark.django_db
def test_old_data_is_anonymised_or_deleted_and_recent_data_kept(
    company: Company, other_company: Company, media: Path
) -> None:
    with_retention(company, 12)
    old = seed(company, OLD, tag="old")
    recent = seed(company, RECENT, tag="new", survey=old.survey)
    # Another company with the same old data and no policy, and one with a policy of its own
    # that is not run here: neither is touched by company's run.
    theirs = seed(other_company, OLD, tag="theirs")
    strict = with_retention(make_company("Strict Co", "owner@strict.test"), 3)
    strict_old = seed(strict, OLD, tag="strict")

    with time_machine.travel(NOW, tick=False):
        run = retention_apply(company=company)

    assert run is not None
    assert run.cutoff == datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
    assert run.finished_at == NOW
    assert run.counts == {
        "responses_anonymised": 1,
        "delighted_responses_stripped": 1,
        "followups_deleted": 1,
        "alert_firings_forgotten": 1,
        "invitations_stripped": 1,
        "invitation_events_deleted": 2,  # ours and "answered"
        "contact_imports_deleted": 1,
        "delighted_imports_deleted": 1,
        "widget_views_deleted": 1,
        "webhook_messages_deleted": 1,
        "deliveries_deleted": 1,
    }

    # The old answer: anonymous, with its score, channel, language and date.
    answer = Response.objects.for_company(company).get(pk=old.response.pk)
    assert (answer.score, answer.category, answer.channel, answer.language) == (
        3,
        "detractor",
        "email",
        "en",
    )
    assert answer.created_at == OLD
    assert answer.comment == ""
    assert answer.extra_answers == {}
    assert answer.contact_properties == {}
    assert answer.invitation_properties == {}
    assert answer.contact_id is None
    assert answer.invitation_id is None
    assert answer.browser_key is None
    # Threads, ledger, logs and files: gone.
    assert not Followup.objects.for_company(company).filter(pk=old.followup.pk).exists()
    assert not FollowupEvent.objects.for_company(company).filter(followup_id=old.followup.pk)
    assert AlertFiring.objects.for_company(company).get(pk=old.firing.pk).deliveries == {}
    invitation = Invitation.objects.for_company(company).get(pk=old.invitation.pk)
    assert invitation.properties == {}
    assert invitation.expires_at is not None
    assert invitation.expires_at <= NOW
    assert invitation.answered_at is not None  # the funnel still counts it
    assert not InvitationEvent.objects.for_company(company).filter(invitation=invitation)
    assert not Delivery.objects.for_company(company).filter(pk=old.delivery.pk).exists()
    assert not DeliveryEvent.objects.for_company(company).filter(delivery_id=old.delivery.pk)
    assert not WebhookMessage.objects.for_company(company).filter(pk=old.message.pk).exists()
    assert not WebhookAttempt.objects.for_company(company).filter(message_id=old.message.pk)
    assert not ContactImport.objects.for_company(company).filter(pk=old.contact_import.pk)
    assert not Path(old.contact_import.file.path).exists()
    assert not Path(old.contact_import.error_report.path).exists()
    assert not DelightedImport.objects.for_company(company).filter(pk=old.delighted_import.pk)
    assert not Path(old.delighted_import.file.path).exists()
    delighted = DelightedResponse.objects.for_company(company).get(pk=old.delighted.pk)
    assert (delighted.notes, delighted.person_id, delighted.delighted_id) == ([], "", "d-old")
    assert not WidgetView.objects.for_company(company).filter(pk=old.widget_view.pk).exists()

    untouched(recent)
    untouched(theirs)
    untouched(strict_old)

    # The old answer link no longer opens (it would make a fresh, identified answer).
    with time_machine.travel(NOW, tick=False):
        assert Client().get(f"/r/{old.token}/").status_code == 410
        assert Client().post(f"/r/{old.token}/", {"score": "9"}).status_code == 410
        assert Client().get(f"/r/{recent.token}/").status_code == 200
    assert Response.objects.for_company(company).count() == 2


@pytest.mark.django_db
def test_nps_and_rollups_stay_the_same(company: Company, media: Path) -> None:
    with_retention(company, 6)
    survey = make_survey(company)
    for number, (score, at) in enumerate(
        [(10, OLD), (9, OLD), (3, OLD), (7, OLD), (10, RECENT), (0, RECENT)]
    ):
        with time_machine.travel(at, tick=False):
            contact = make_contact(company, email=f"p{number}@customer.test", properties={"k": 1})
            invitation, _token = make_invitation(survey, contact)
            response_record(
                invitation=invitation,
                survey=survey,
                score=score,
                comment="why",
                channel="email",
                language="en",
            )

    def figures() -> list[Any]:
        everything = metrics_for(company=company)
        by_channel = metrics_for(company=company, segment="channel")
        old_months = metrics_for(company=company, since=date(2025, 9, 1), until=date(2025, 10, 31))
        return [everything, by_channel["segments"], old_months]

    with time_machine.travel(NOW, tick=False):
        before = figures()
        assert before[0]["nps"] == pytest.approx(100 * (3 - 2) / 6)
        retention_apply(company=company)
        assert figures() == before
        # Rebuilt from the anonymised rows, the rollups give the same figures.
        rollup_rebuild(company=company)
        assert figures() == before
    assert Response.objects.for_company(company).exclude(comment="").count() == 2


@pytest.mark.django_db
def test_a_second_run_finds_nothing_and_a_company_without_a_policy_is_skipped(
    company: Company, media: Path
) -> None:
    assert company.retention_months is None
    seed(company, OLD, tag="old")
    with time_machine.travel(NOW, tick=False):
        assert retention_apply(company=company) is None
        assert not RetentionRun.objects.for_company(company).exists()
        with_retention(company, 12)
        first = retention_apply(company=company)
        second = retention_apply(company=company)
    assert first is not None
    assert first.counts
    assert second is not None
    assert second.counts == {}


@pytest.mark.django_db
def test_rows_are_walked_in_batches(company: Company) -> None:
    survey = make_survey(company)
    for number in range(5):
        with time_machine.travel(OLD, tick=False):
            contact = make_contact(company, email=f"b{number}@customer.test")
            invitation, _token = make_invitation(survey, contact)
            response_record(
                invitation=invitation,
                survey=survey,
                score=9,
                comment="x",
                channel="email",
                language="en",
            )
    batches: list[list[int]] = []
    rows = Response.objects.for_company(company).exclude(comment="")

    def clear(pks: list[int]) -> None:
        batches.append(pks)
        Response.objects.for_company(company).filter(pk__in=pks).update(comment="")

    assert in_batches(rows, clear, batch_size=2) == 5
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert in_batches(rows, clear, batch_size=2) == 0


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_share_the_work(company: Company, media: Path) -> None:
    """Two runs at once on PostgreSQL: no error, no deadlock, every row done exactly once."""
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL")
    with_retention(company, 12)
    survey = make_survey(company)
    for number in range(40):
        with time_machine.travel(OLD, tick=False):
            contact = make_contact(company, email=f"c{number}@customer.test")
            invitation, _token = make_invitation(survey, contact)
            response_record(
                invitation=invitation,
                survey=survey,
                score=number % 11,
                comment="x",
                channel="email",
                language="en",
            )
    runs: list[RetentionRun | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            runs.append(retention_apply(company=Company.objects.get(pk=company.pk)))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    done = sum((r.counts.get("responses_anonymised", 0) if r else 0) for r in runs)
    assert done == 40
    assert not Response.objects.for_company(company).exclude(comment="").exists()


# --- The daily job -----------------------------------------------------------------------------


def test_the_job_is_on_the_beat_schedule_daily() -> None:
    from celery import current_app

    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "nps_saas.retention_run_due"
    ]
    assert len(entries) == 1
    assert isinstance(entries[0]["schedule"], crontab)
    schedule: Any = entries[0]["schedule"]  # the stubs lack crontab's fields
    # Once a day, every day, at one time.
    assert (len(schedule.hour), len(schedule.minute), len(schedule.day_of_week)) == (1, 1, 7)
    assert len(schedule.day_of_month) == 31
    assert len(schedule.month_of_year) == 12
    assert "nps_saas.retention_run_due" in current_app.tasks
    # The embedded default's scheduler accepts it too.
    EmbeddedScheduler(app=current_app, beat_schedule=settings.CELERY_BEAT_SCHEDULE)


@pytest.mark.django_db
def test_the_job_runs_each_company_with_a_policy(
    company: Company,
    other_company: Company,
    media: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with_retention(company, 12)
    seed(company, OLD, tag="mine")
    theirs = seed(other_company, OLD, tag="theirs")

    with django_capture_on_commit_callbacks(execute=True):
        retention_run_due.delay()  # eager in tests

    run = RetentionRun.objects.for_company(company).get()
    assert run.counts["responses_anonymised"] == 1
    assert not RetentionRun.objects.for_company(other_company).exists()
    untouched(theirs)


def test_the_job_runs_in_the_real_worker(
    celery_worker_process: CeleryWorker, tmp_path: Path
) -> None:
    company = with_retention(make_company("Worker Co", "owner@worker.test"), 12)
    survey = make_survey(company)
    contact = make_contact(company)
    invitation, _token = make_invitation(survey, contact)
    response = response_record(
        invitation=invitation,
        survey=survey,
        score=2,
        comment="Cold coffee",
        channel="email",
        language="en",
    )
    # Made long ago (the worker runs on the real clock).
    Response.objects.for_company(company).filter(pk=response.pk).update(
        created_at=timezone.now() - timedelta(days=400)
    )

    retention_run_due.delay()

    run = celery_worker_process.wait_for(
        lambda: RetentionRun.objects.for_company(company).filter(finished_at__isnull=False).first(),
        what="the worker's retention run",
    )
    assert run.counts["responses_anonymised"] == 1
    assert Response.objects.for_company(company).get(pk=response.pk).comment == ""


# --- The settings page and the API ----------------------------------------------------------------


def settings_url(company: Company) -> str:
    return reverse("companies:settings", kwargs={"company_slug": company.slug})


def form_data(company: Company, **changes: str) -> dict[str, str]:
    data = {
        "name": company.name,
        "industry": company.industry,
        "country": company.country,
        "time_zone": company.time_zone,
        "default_language": company.default_language,
        "sender_name": company.sender_name,
        "reply_to": company.reply_to,
        "retention_months": "",
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_an_admin_sets_and_clears_the_period(
    personas: dict[str, Persona], company: Company
) -> None:
    client: Client = personas[Role.ADMIN].client
    page = client.get(settings_url(company)).content.decode()
    assert 'name="retention_months"' in page
    assert "Data retention" in page

    response = client.post(settings_url(company), form_data(company, retention_months="24"))
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.retention_months == 24

    client.post(settings_url(company), form_data(company, retention_months=""))
    company.refresh_from_db()
    assert company.retention_months is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2", "greater than or equal to 3"),
        ("121", "less than or equal to 120"),
        ("-5", "greater than or equal to"),
        ("two years", "Enter a whole number."),
    ],
)
def test_a_period_out_of_bounds_is_refused_with_a_message(
    personas: dict[str, Persona], company: Company, value: str, message: str
) -> None:
    client = personas[Role.OWNER].client
    response = client.post(settings_url(company), form_data(company, retention_months=value))
    assert response.status_code == 200
    assert message in response.content.decode()
    company.refresh_from_db()
    assert company.retention_months is None


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_set_it(
    personas: dict[str, Persona], company: Company, role: str
) -> None:
    response = personas[role].client.post(
        settings_url(company), form_data(company, retention_months="12")
    )
    assert response.status_code == 403
    company.refresh_from_db()
    assert company.retention_months is None


@pytest.mark.django_db
def test_an_outsider_cannot_set_it(outsider: Persona, company: Company) -> None:
    response = outsider.client.post(
        settings_url(company), form_data(company, retention_months="12")
    )
    assert response.status_code == 404
    company.refresh_from_db()
    assert company.retention_months is None


@pytest.mark.django_db
def test_the_page_shows_the_last_run_and_its_counts(
    personas: dict[str, Persona], company: Company, media: Path
) -> None:
    client = personas[Role.ADMIN].client
    with_retention(company, 12)
    assert "It has not run yet" in client.get(settings_url(company)).content.decode()

    seed(company, OLD, tag="old")
    with time_machine.travel(NOW, tick=False):
        retention_apply(company=company)
    page = client.get(settings_url(company)).content.decode()
    assert "Last run" in page
    assert "answers anonymised: 1" in page
    assert "delivery log entries deleted: 1" in page


@pytest.mark.django_db
def test_the_api_shows_the_period(api_owner: KeyPersona, company: Company) -> None:
    client = Client()
    auth = {"Authorization": f"Bearer {api_owner.key}"}
    assert client.get("/api/v1/company/", headers=auth).json()["retention_months"] is None
    with_retention(company, 18)
    assert client.get("/api/v1/company/", headers=auth).json()["retention_months"] == 18
