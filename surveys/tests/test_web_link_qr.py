"""The web link's QR code (SVG and PNG downloads) and its printable poster, on the survey page."""

from __future__ import annotations

import io

import pytest
import segno
from django.urls import reverse

from surveys.models import Survey, SurveyStatus
from surveys.services import links
from surveys.services.surveys import survey_create

pytestmark = pytest.mark.django_db


def url(name, company, **kwargs):
    return reverse(f"surveys:{name}", kwargs={"company_slug": company.slug, **kwargs})


@pytest.fixture
def survey(company):
    survey = survey_create(company=company, name="Кофейня: отзыв")
    Survey.objects.for_company(company).filter(pk=survey.pk).update(status=SurveyStatus.ACTIVE)
    survey.refresh_from_db()
    return survey


def _expected(kind: str, link: str, **options) -> bytes:
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind=kind, border=4, **options)
    return buffer.getvalue()


def test_the_qr_code_encodes_the_public_web_link(settings, survey):
    settings.SITE_URL = "https://nps.example.com"
    link = f"https://nps.example.com/l/{survey.public_id}/"
    assert links.web_link_url(survey) == link
    assert links.web_link_short(survey) == f"nps.example.com/l/{survey.public_id}/"
    # The same symbol as segno makes of the link itself: the encoded text is the link.
    assert links.web_link_qr_png(survey) == _expected("png", link, scale=16)
    assert links.web_link_qr_svg(survey) == _expected("svg", link, scale=10, xmldecl=True)


def test_members_download_svg_and_png_with_names_and_types(settings, viewer, company, survey):
    settings.SITE_URL = "https://nps.example.com"
    svg = viewer.client.get(url("qr-svg", company, survey_id=survey.public_id))
    assert svg.status_code == 200
    assert svg["Content-Type"] == "image/svg+xml"
    assert svg["Content-Disposition"].startswith("attachment;")
    assert "qr-code.svg" in svg["Content-Disposition"]
    assert "%D0%BA%D0%BE%D1%84%D0%B5%D0%B9%D0%BD%D1%8F" in svg["Content-Disposition"]  # кофейня
    assert svg.content.startswith(b"<?xml")
    assert b"<svg" in svg.content
    png = viewer.client.get(url("qr-png", company, survey_id=survey.public_id))
    assert png.status_code == 200
    assert png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert "qr-code.png" in png["Content-Disposition"]
    assert png.content == links.web_link_qr_png(survey)


def test_outsiders_get_no_qr_code(outsider, company, survey):
    for name in ("qr-svg", "qr-png", "poster"):
        page = outsider.client.get(url(name, company, survey_id=survey.public_id))
        assert page.status_code == 404


def test_the_survey_page_offers_the_downloads_the_poster_and_the_kiosk(viewer, company, survey):
    body = viewer.client.get(url("edit", company, survey_id=survey.public_id)).content.decode()
    assert url("qr-svg", company, survey_id=survey.public_id) in body
    assert url("qr-png", company, survey_id=survey.public_id) in body
    assert url("poster", company, survey_id=survey.public_id) in body
    assert links.kiosk_url(survey).replace("&", "&amp;") in body or links.kiosk_url(survey) in body


def test_no_downloads_offered_for_a_draft(viewer, company):
    draft = survey_create(company=company, name="Draft")
    body = viewer.client.get(url("edit", company, survey_id=draft.public_id)).content.decode()
    assert url("qr-svg", company, survey_id=draft.public_id) not in body
    assert links.kiosk_key(draft) not in body


def test_the_poster_shows_question_code_and_short_link_in_the_chosen_language(
    settings, viewer, company, survey
):
    settings.SITE_URL = "https://nps.example.com"
    poster = viewer.client.get(url("poster", company, survey_id=survey.public_id) + "?lang=ru")
    assert poster.status_code == 200
    body = poster.content.decode()
    assert "<svg" in body
    assert 'viewBox="' in body
    assert '<article class="poster" lang="ru"' in body
    assert f"nps.example.com/l/{survey.public_id}/" in body
    assert "Насколько вероятно" in body  # the Russian question
    kazakh = viewer.client.get(url("poster", company, survey_id=survey.public_id) + "?lang=kk")
    assert 'lang="kk"' in kazakh.content.decode()
