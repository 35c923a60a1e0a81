"""The survey editor under /c/<company_slug>/surveys/: list, create, edit, status, preview.

Everyone in the company may look (viewer); managers and above create, edit and change the
status. The tenancy middleware has checked membership and role before these run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from csp.decorators import csp_update
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from companies.models import Company, Role, role_at_least
from companies.permissions import company_view
from surveys.defaults import LANGUAGES
from surveys.emails import preview_invitation_email, safe_accent
from surveys.forms import LANGUAGE_NAMES, StatusForm, SurveyForm
from surveys.models import Survey, SurveyStatus
from surveys.selectors import survey_extra_questions, survey_get, survey_text, surveys_list
from surveys.services import links
from surveys.services.surveys import (
    STATUS_TRANSITIONS,
    survey_create,
    survey_set_status,
    survey_update,
)

# The editor previews the company's own logo, which lives on its own https host.
_editor_csp: Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]] = csp_update(
    {"img-src": ["https:"]}
)  # type: ignore[assignment]

# The message after each status change.
STATUS_MESSAGES: dict[str, Any] = {
    SurveyStatus.ACTIVE: gettext_lazy("The survey is active: it can be sent."),
    SurveyStatus.PAUSED: gettext_lazy("The survey is paused: nothing more is sent."),
    SurveyStatus.ARCHIVED: gettext_lazy("The survey is archived."),
}
PREVIEW_SCORES = {"promoter": 9, "passive": 7, "detractor": 3}


def _company(request: HttpRequest) -> Company:
    return request.company  # type: ignore[attr-defined]


def _can_manage(request: HttpRequest) -> bool:
    membership = request.membership  # type: ignore[attr-defined]
    return membership is not None and role_at_least(membership.role, Role.MANAGER)


def _survey_or_404(request: HttpRequest, survey_id: str) -> Survey:
    survey = survey_get(company=_company(request), public_id=survey_id)
    if survey is None:
        raise Http404("No such survey")
    return survey


def _status_actions(survey: Survey) -> list[dict[str, str]]:
    """The status buttons offered for a survey (what STATUS_TRANSITIONS allows)."""
    labels = {
        SurveyStatus.ACTIVE: _("Resume") if survey.status == SurveyStatus.PAUSED else _("Activate"),
        SurveyStatus.PAUSED: _("Restore") if survey.status == SurveyStatus.ARCHIVED else _("Pause"),
        SurveyStatus.ARCHIVED: _("Archive"),
    }
    allowed = STATUS_TRANSITIONS[survey.status]
    return [
        {"status": status, "label": label} for status, label in labels.items() if status in allowed
    ]


def _web_link(survey: Survey | None) -> str:
    """The survey's open web link (website, QR code, chat), absolute; only while it is active."""
    if survey is None or survey.status != SurveyStatus.ACTIVE:
        return ""
    return links.web_link_url(survey)


@company_view(Role.VIEWER)
def survey_list(request: HttpRequest) -> HttpResponse:
    company = _company(request)
    show_archived = request.GET.get("show") == "archived"
    surveys = surveys_list(company=company)
    surveys = (
        surveys.filter(status=SurveyStatus.ARCHIVED)
        if show_archived
        else surveys.exclude(status=SurveyStatus.ARCHIVED)
    )
    archived_count = surveys_list(company=company).filter(status=SurveyStatus.ARCHIVED).count()
    return render(
        request,
        "surveys/survey_list.html",
        {
            "surveys": surveys,
            "show_archived": show_archived,
            "archived_count": archived_count,
        },
    )


def _preview_context(
    request: HttpRequest, survey: Survey, language: str, score_category: str
) -> dict[str, Any]:
    """The web page and the email, rendered for a survey (saved or not), in one language."""
    company = _company(request)
    language = language if language in LANGUAGES else survey.default_language
    category = score_category if score_category in PREVIEW_SCORES else "promoter"
    score = PREVIEW_SCORES[category]

    def text(key: str) -> str:
        return survey_text(survey=survey, company=company, language=language, key=key)

    page = render_to_string(
        "surveys/preview_page.html",
        {
            "language": language,
            "company_name": company.name,
            "survey": survey,
            "accent": safe_accent(survey),
            "score": score,
            "scores": range(11),
            "question": text("question"),
            "followup": text(f"why_{category}"),
            "thanks": text("thanks"),
            "scale_low": text("scale_low"),
            "scale_high": text("scale_high"),
            "comment_placeholder": text("comment_placeholder"),
            "submit": text("submit"),
            "optional": text("optional"),
            "extra_title": text("extra_title"),
            "anonymous_note": text("anonymous_note") if survey.anonymous else "",
            "extra_questions": survey_extra_questions(survey=survey, language=language),
        },
    )
    email = preview_invitation_email(survey=survey, company=company, language=language)
    return {
        "preview_language": language,
        "preview_category": category,
        "preview_languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in LANGUAGES],
        "preview_categories": [
            ("promoter", _("Promoter (9)")),
            ("passive", _("Passive (7)")),
            ("detractor", _("Detractor (3)")),
        ],
        "preview_page": page,
        "preview_email": email,
    }


def _editor(request: HttpRequest, survey: Survey | None) -> HttpResponse:
    company = _company(request)
    can_manage = _can_manage(request)
    form = SurveyForm(
        request.POST if request.method == "POST" else None, company=company, instance=survey
    )
    if request.method == "POST" and form.is_valid():
        try:
            if survey is None:
                saved = survey_create(
                    company=company,
                    created_by=request.user,  # type: ignore[arg-type]
                    **form.service_fields(),
                )
                messages.success(
                    request, _("Survey created as a draft. Activate it when you are ready.")
                )
            else:
                saved = survey_update(company=company, survey=survey, **form.service_fields())
                messages.success(request, _("Survey saved."))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return redirect("surveys:edit", company_slug=company.slug, survey_id=saved.public_id)
    preview_survey = form.preview_survey() if form.is_bound else (survey or form.preview_survey())
    context = {
        "form": form,
        "survey": survey,
        "can_edit": can_manage,
        "status_actions": _status_actions(survey) if survey and can_manage else [],
        "web_link": _web_link(survey),
        "kiosk_url": links.kiosk_url(survey) if survey is not None and _web_link(survey) else "",
        **_preview_context(request, preview_survey, preview_survey.default_language, "promoter"),
        "sms_previews": _sms_previews(preview_survey, company),
    }
    return render(request, "surveys/survey_form.html", context)


# An answer link as long as a real one (a 43-character token) and a typical first name.
_SAMPLE_TOKEN = "x" * 43
_SAMPLE_NAME = "Alexandra"


def _sms_previews(survey: Survey, company: Company) -> list[dict[str, Any]]:
    """The SMS invitation in each language with its encoding and segment count (each segment
    is billed as one message; one non-GSM character makes the whole text UCS-2)."""
    from notifications.sms_segments import sms_segments
    from surveys.services.links import answer_link_for_token
    from surveys.sms import sms_invitation_text

    link = answer_link_for_token(_SAMPLE_TOKEN)
    previews = []
    for code in LANGUAGES:
        text = sms_invitation_text(
            survey=survey, company=company, language=code, name=_SAMPLE_NAME, link=link
        )
        info = sms_segments(text)
        previews.append(
            {
                "language": LANGUAGE_NAMES.get(code, code),
                "text": text,
                "encoding": info.encoding,
                "length": info.length,
                "segments": info.segments,
                # Worth fixing only where the rest of the text would be GSM-7.
                "non_gsm": [c for c in info.non_gsm if not c.isalpha()] if code == "en" else [],
            }
        )
    return previews


@company_view(Role.MANAGER)
@_editor_csp
def survey_create_view(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@company_view(Role.VIEWER, write_role=Role.MANAGER)
@_editor_csp
def survey_edit(request: HttpRequest, survey_id: str) -> HttpResponse:
    return _editor(request, _survey_or_404(request, survey_id))


@company_view(Role.VIEWER, write_role=Role.VIEWER)
@require_POST
def survey_preview(request: HttpRequest) -> HttpResponse:
    """The live preview (htmx): the editor's current input rendered, nothing saved.

    Viewers may post here: it only renders what they could see on the page anyway.
    ``survey_id`` (optional) names the survey being edited, so that its saved values fill
    in what the form does not say.
    """
    company = _company(request)
    survey = None
    if request.POST.get("survey_id"):
        survey = _survey_or_404(request, str(request.POST["survey_id"]))
    form = SurveyForm(request.POST, company=company, instance=survey)
    context = _preview_context(
        request,
        form.preview_survey(),
        str(request.POST.get("preview_language") or ""),
        str(request.POST.get("preview_category") or ""),
    )
    return render(request, "surveys/_preview.html", context)


@company_view(Role.MANAGER)
@require_POST
def survey_status(request: HttpRequest, survey_id: str) -> HttpResponse:
    company = _company(request)
    survey = _survey_or_404(request, survey_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a status."))
    else:
        new_status = form.cleaned_data["status"]
        try:
            survey_set_status(company=company, survey=survey, status=new_status)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, STATUS_MESSAGES.get(new_status, _("Saved.")))
    return redirect("surveys:edit", company_slug=company.slug, survey_id=survey.public_id)


# --- The web link's QR code and poster -----------------------------------------------------------

QR_FORMATS = {"svg": "image/svg+xml", "png": "image/png"}


def _qr_file_name(survey: Survey, extension: str) -> str:
    """``<survey name>-qr-code.<ext>``: recognisable in a downloads folder."""
    stem = slugify(survey.name, allow_unicode=True)[:60] or "survey"
    return f"{stem}-qr-code.{extension}"


@company_view(Role.VIEWER)
def survey_qr(request: HttpRequest, survey_id: str, fmt: str) -> HttpResponse:
    """The web link's QR code as a file (SVG for print shops, PNG for everything else)."""
    survey = _survey_or_404(request, survey_id)
    if fmt not in QR_FORMATS:
        raise Http404("No such format")
    body = (
        links.web_link_qr_svg(survey, title=survey.name)
        if fmt == "svg"
        else links.web_link_qr_png(survey)
    )
    response = HttpResponse(body, content_type=QR_FORMATS[fmt])
    response["Content-Disposition"] = (
        content_disposition_header(True, _qr_file_name(survey, fmt)) or ""
    )
    return response


@company_view(Role.VIEWER)
def survey_poster(request: HttpRequest, survey_id: str) -> HttpResponse:
    """A printable poster of the web link: the question, the QR code, the short link; in the
    respondent's language (``?lang=``, default the survey's)."""
    company = _company(request)
    survey = _survey_or_404(request, survey_id)
    language = str(request.GET.get("lang") or "")
    if language not in LANGUAGES:
        language = survey.default_language if survey.default_language in LANGUAGES else "en"
    return render(
        request,
        "surveys/poster.html",
        {
            "survey": survey,
            "poster_language": language,
            "poster_languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in LANGUAGES],
            "question": survey_text(
                survey=survey, company=company, language=language, key="question"
            ),
            "qr_svg": links.web_link_qr_svg_inline(survey),
            "short_link": links.web_link_short(survey),
            "active": survey.status == SurveyStatus.ACTIVE,
        },
    )
