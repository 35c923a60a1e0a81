"""The survey editor pages: list, create, edit, status, live preview; roles and tenancy."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from companies.models import Role
from surveys.models import Survey, SurveyStatus
from surveys.services.surveys import survey_create

pytestmark = pytest.mark.django_db


def url(name, company, **kwargs):
    return reverse(f"surveys:{name}", kwargs={"company_slug": company.slug, **kwargs})


def form_data(**overrides):
    data = {
        "name": "Customer pulse",
        "kind": "nps",
        "default_language": "en",
        "logo_url": "",
        "accent_color": "#4f46e5",
        "scale_style": "colored",
        "throttle_days": "90",
        "sample_percent": "100",
        "reminder_after_days": "",
        "link_valid_days": "30",
    }
    data.update(overrides)
    return data


@pytest.fixture
def survey(company):
    return survey_create(company=company, name="Quarterly NPS")


def test_list_shows_the_surveys_and_hides_archived_ones(company, viewer, survey):
    archived = survey_create(company=company, name="Old one")
    Survey.objects.for_company(company).filter(pk=archived.pk).update(status="archived")
    response = viewer.client.get(url("list", company))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Quarterly NPS" in body
    assert "Old one" not in body
    assert url("edit", company, survey_id=survey.public_id) in body
    assert url("create", company) not in body  # viewers create nothing
    response = viewer.client.get(url("list", company) + "?show=archived")
    assert "Old one" in response.content.decode()
    assert "Quarterly NPS" not in response.content.decode()


def test_nav_links_to_surveys(owner, company):
    response = owner.client.get(
        reverse("companies:overview", kwargs={"company_slug": company.slug})
    )
    assert url("list", company) in response.content.decode()


def test_create_page_shows_default_wording_as_placeholders(personas, company):
    response = personas[Role.MANAGER].client.get(url("create", company))
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert (
        'placeholder="How likely are you to recommend Acme Coffee to a friend or colleague?"'
        in body
    )
    assert "Acme Coffee компаниясын досыңызға" in body
    assert 'placeholder="Насколько вероятно' in body
    # The preview is on the page from the start: both the answer page and the email.
    assert 'data-testid="preview"' in body
    assert body.count("<iframe") == 2


def test_manager_creates_a_survey_with_wording_and_extra_questions(personas, company):
    manager = personas[Role.MANAGER]
    data = form_data(
        **{
            "text_ru_question": "Порекомендуете ли вы {company}?",
            "text_en_why_detractor": "What went wrong?",
            "extra_0_kind": "choice",
            "extra_0_text_en": "Which plan?",
            "extra_0_choices_en": "Free\nPro\n\n",
            "extra_0_choices_ru": "Бесплатный\nПро",
            "extra_2_kind": "text",
            "extra_2_text_en": "Anything else?",
            "kind": "enps",
            "reminder_after_days": "3",
        }
    )
    response = manager.client.post(url("create", company), data)
    survey = Survey.objects.for_company(company).get()
    assert response.status_code == 302
    assert response["Location"] == url("edit", company, survey_id=survey.public_id)
    assert survey.created_by == manager.user
    assert survey.status == SurveyStatus.DRAFT
    assert (survey.kind, survey.anonymous, survey.reminder_after_days) == ("enps", True, 3)
    assert survey.texts == {
        "en": {"why_detractor": "What went wrong?"},
        "ru": {"question": "Порекомендуете ли вы {company}?"},
    }
    first, second = survey.extra_questions
    assert first["kind"] == "choice"
    assert first["choices"] == [{"en": "Free", "ru": "Бесплатный"}, {"en": "Pro", "ru": "Про"}]
    assert second["kind"] == "text"
    assert second["text"] == {"en": "Anything else?"}

    # Editing it again keeps the question ids (answers are keyed by them).
    response = manager.client.get(url("edit", company, survey_id=survey.public_id))
    body = response.content.decode()
    assert f'value="{first["id"]}"' in body
    assert "What went wrong?" in body


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "This field is required"),
        ({"accent_color": "red"}, "Use a colour written like #4f46e5."),
        ({"logo_url": "http://acme.test/logo.png"}, "Use an https:// address of an image."),
        ({"promoter_link_url": "http://reviews.test/acme"}, "Use an https:// address."),
        ({"text_en_promoter_button": "x" * 61}, "at most 60 characters"),
        ({"sample_percent": "0"}, "greater than or equal to 1"),
        ({"throttle_days": "99999"}, "less than or equal to 3650"),
        (
            {"extra_0_kind": "choice", "extra_0_text_en": "Q?", "extra_0_choices_en": "Only"},
            "Question 1: give 2 to 10 choices.",
        ),
        (
            {"extra_1_kind": "text"},
            "Question 1: write it at least in the survey&#x27;s default language (en).",
        ),
        ({"text_en_question": "x" * 301}, "at most 300 characters"),
    ],
)
def test_invalid_form_shows_errors_and_saves_nothing(personas, company, survey, overrides, message):
    manager = personas[Role.MANAGER]
    before = Survey.objects.for_company(company).values().get(pk=survey.pk)
    response = manager.client.post(url("create", company), form_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Survey.objects.for_company(company).count() == 1
    response = manager.client.post(
        url("edit", company, survey_id=survey.public_id), form_data(**overrides)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Survey.objects.for_company(company).values().get(pk=survey.pk) == before


def test_manager_edits_a_survey(personas, company, survey):
    response = personas[Role.MANAGER].client.post(
        url("edit", company, survey_id=survey.public_id),
        form_data(name="Renamed", scale_style="neutral", accent_color="#0E7490"),
    )
    assert response.status_code == 302
    survey.refresh_from_db()
    assert (survey.name, survey.scale_style, survey.accent_color) == (
        "Renamed",
        "neutral",
        "#0e7490",
    )


def test_viewer_sees_the_survey_read_only_and_cannot_save(viewer, company, survey):
    response = viewer.client.get(url("edit", company, survey_id=survey.public_id))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<fieldset class="editor-fieldset" disabled>' in body
    assert url("status", company, survey_id=survey.public_id) not in body
    assert (
        viewer.client.post(
            url("edit", company, survey_id=survey.public_id), form_data()
        ).status_code
        == 403
    )
    assert viewer.client.get(url("create", company)).status_code == 403
    survey.refresh_from_db()
    assert survey.name == "Quarterly NPS"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
def test_below_manager_cannot_create_or_change_status(personas, company, survey, role):
    client = personas[role].client
    assert client.post(url("create", company), form_data()).status_code == 403
    response = client.post(url("status", company, survey_id=survey.public_id), {"status": "active"})
    assert response.status_code == 403
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.DRAFT
    assert Survey.objects.for_company(company).count() == 1


def test_outsider_gets_404_everywhere(outsider, company, survey):
    for name, kwargs in (
        ("list", {}),
        ("create", {}),
        ("edit", {"survey_id": survey.public_id}),
    ):
        assert outsider.client.get(url(name, company, **kwargs)).status_code == 404
    assert (
        outsider.client.post(
            url("status", company, survey_id=survey.public_id), {"status": "active"}
        ).status_code
        == 404
    )
    assert outsider.client.post(url("preview", company), form_data()).status_code == 404
    # Under their own slug, our survey does not exist either.
    theirs = outsider.company
    assert outsider.client.get(url("edit", theirs, survey_id=survey.public_id)).status_code == 404
    response = outsider.client.post(
        url("status", theirs, survey_id=survey.public_id), {"status": "active"}
    )
    assert response.status_code == 404
    response = outsider.client.post(
        url("preview", theirs), {**form_data(), "survey_id": survey.public_id}
    )
    assert response.status_code == 404
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.DRAFT


def test_status_buttons_move_the_survey(personas, company, survey):
    client = personas[Role.MANAGER].client
    edit = url("edit", company, survey_id=survey.public_id)
    body = client.get(edit).content.decode()
    assert 'data-status="active"' in body
    assert 'data-status="paused"' not in body
    response = client.post(
        url("status", company, survey_id=survey.public_id), {"status": "active"}, follow=True
    )
    assert "The survey is active" in response.content.decode()
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.ACTIVE
    assert 'data-status="paused"' in response.content.decode()
    # A transition that is not allowed: a clear message, no change.
    response = client.post(
        url("status", company, survey_id=survey.public_id), {"status": "draft"}, follow=True
    )
    assert "cannot become draft" in response.content.decode()
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.ACTIVE
    assert client.get(url("status", company, survey_id=survey.public_id)).status_code == 405


def test_preview_renders_the_unsaved_input(viewer, company, survey):
    response = viewer.client.post(
        url("preview", company),
        {
            **form_data(scale_style="neutral", accent_color="#0e7490"),
            "text_kk_question": "Бізді ұсынасыз ба, {company}?",
            "extra_0_kind": "text",
            "extra_0_text_en": "Anything else?",
            "extra_0_text_kk": "Тағы не айтасыз?",
            "preview_language": "kk",
            "preview_category": "detractor",
            "survey_id": survey.public_id,
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert 'data-language="kk"' in body
    assert body.count("<iframe") == 2
    assert "Бізді ұсынасыз ба, Acme Coffee?" in body  # the web page and the email
    assert "Тағы не айтасыз?" in body
    assert "компаниясы ең алдымен нені жақсартуы керек" in body  # the detractor follow-up
    # The email preview is the real email, with inert links.
    assert body.count('data-score="') == 11
    assert "https://example.invalid/r/preview/9/" in body
    assert "border:1px solid #0e7490" in body
    assert "<script" not in body.split("srcdoc=", 1)[1]
    # Nothing was saved.
    survey.refresh_from_db()
    assert survey.texts == {}
    assert survey.scale_style == "colored"


def test_preview_of_a_half_typed_form_still_renders(personas, company):
    response = personas[Role.MANAGER].client.post(
        url("preview", company), {"accent_color": "nonsense", "sample_percent": "x"}
    )
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert "How likely are you to recommend Acme Coffee to a friend or colleague?" in body
    assert "nonsense" not in body
    assert not Survey.objects.for_company(company).exists()
    assert personas[Role.MANAGER].client.get(url("preview", company)).status_code == 405


def test_editor_allows_the_company_logo_in_its_csp(personas, company):
    response = personas[Role.MANAGER].client.get(url("create", company))
    policy = response.headers.get("Content-Security-Policy", "")
    assert "img-src" in policy
    assert "https:" in policy.split("img-src", 1)[1].split(";")[0]
