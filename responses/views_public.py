"""Respondent pages: the answer link of an invitation (``/r/<token>/``) and a survey's open web
link (``/l/<public_id>/``). No login; the company comes from the token or the survey id.

A GET never records anything: email security scanners open every link in a message. The
score page records the clicked score from the browser (static/responses/answer.js POSTs the
form on load); without JavaScript the same form is sent with its button.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods, require_safe
from rest_framework.settings import api_settings

from companies.ratelimit import window_counts
from responses.forms import AnswerForm
from responses.models import Category, Response, ResponseChannel, category_of
from responses.selectors import (
    invitation_for_token,
    response_for_browser,
    response_for_invitation,
    survey_for_link,
)
from responses.services import (
    SURVEY_LANGUAGE_CODES,
    browser_key_for,
    link_signature_valid,
    response_record,
)
from surveys.models import Contact, Invitation, Survey, SurveyStatus

BROWSER_COOKIE = "nps_browser"
BROWSER_COOKIE_MAX_AGE = 2 * 365 * 24 * 3600
_BROWSER_COOKIE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Web-link answers per client IP: abuse protection for an open link, not a quota.
LINK_POSTS_PER_WINDOW = 20
LINK_WINDOW_SECONDS = 600
# A kiosk (the survey's kiosk address, which only the company's members are shown) has its
# own budget per survey and IP: one answer every 10 seconds on average, more than a queue at
# one tablet gives, so a shop's kiosk is not refused after 20 customers; a script holding the
# kiosk address gets at most this many answers per window from one address.
KIOSK_POSTS_PER_WINDOW = 60
# Seconds the kiosk's thank-you page stays before the next person's fresh question, and an
# abandoned question (a score picked, nothing sent) stays before it is cleared.
KIOSK_RESET_SECONDS = 8
KIOSK_IDLE_SECONDS = 90
_KIOSK_PERSON_RE = _BROWSER_COOKIE_RE
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_ACCENT = "#4f46e5"
TEXT_KEYS = ("question", "why_promoter", "why_passive", "why_detractor", "thanks")


# --- Page helpers ------------------------------------------------------------------------------


def _language(request: HttpRequest, default: str) -> str:
    """``?lang=`` (en/ru/kk) switches the page; else the invitation's or survey's language."""
    asked = request.GET.get("lang", "")
    if asked in SURVEY_LANGUAGE_CODES:
        return asked
    return default if default in SURVEY_LANGUAGE_CODES else "en"


def _texts(survey: Survey, language: str) -> dict[str, str]:
    from surveys.selectors import survey_text

    return {
        key: survey_text(survey=survey, company=survey.company, language=language, key=key)
        for key in TEXT_KEYS
    }


def _promoter_link(survey: Survey, response: Response | None, language: str) -> dict[str, str]:
    """The survey's review or referral link, for a respondent whose answer is a promoter's."""
    from surveys.selectors import survey_text

    if not survey.promoter_link_url.startswith("https://") or response is None:
        return {}
    if response.category != Category.PROMOTER:
        return {}
    return {
        "url": survey.promoter_link_url,
        **{
            key: survey_text(survey=survey, company=survey.company, language=language, key=key)
            for key in ("promoter_invite", "promoter_button")
        },
    }


def _branding(survey: Survey) -> dict[str, Any]:
    # The accent goes into a style attribute: only a plain hex colour may get there.
    accent = survey.accent_color if _HEX_COLOUR.match(survey.accent_color or "") else ""
    logo = survey.logo_url if survey.logo_url.startswith(("https://", "http://")) else ""
    return {
        "accent": accent or DEFAULT_ACCENT,
        "scale_style": survey.scale_style,
        "logo_url": logo,
        "company_name": survey.company.name,
    }


def _languages(request: HttpRequest, current: str) -> list[dict[str, Any]]:
    """Links to the same page in the other survey languages (the query string kept)."""
    links = []
    for code, name in settings.SURVEY_LANGUAGES:
        query = request.GET.copy()
        query["lang"] = code
        links.append(
            {"code": code, "name": name, "url": f"?{query.urlencode()}", "current": code == current}
        )
    return links


def _page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    language: str,
    survey: Survey | None = None,
    status: int = 200,
) -> HttpResponse:
    base: dict[str, Any] = {"language": language, "languages": _languages(request, language)}
    if survey is not None:
        base["brand"] = _branding(survey)
    with translation.override(language):
        response = render(request, template, {**base, **context}, status=status)
    response["Content-Language"] = language
    if survey is not None and base["brand"]["logo_url"]:
        # The company's logo is served from its own site: allow that origin for images only.
        parts = urlsplit(base["brand"]["logo_url"])
        response._csp_update = {"img-src": [f"{parts.scheme}://{parts.netloc}"]}  # type: ignore[attr-defined]
    return response


def _unavailable(
    request: HttpRequest, status: int, *, language: str = "en", reason: str
) -> HttpResponse:
    """A friendly page for unknown (404), expired or closed (410) links, rate limits (429)."""
    with translation.override(language):
        messages = {
            "unknown": (
                _("We could not find this survey"),
                _(
                    "The link may be incomplete. "
                    "Please open it again from the message you received."
                ),
            ),
            "expired": (
                _("This link has expired"),
                _(
                    "Thank you for your interest: "
                    "this survey is no longer taking answers from this link."
                ),
            ),
            "closed": (
                _("This survey is closed"),
                _("Thank you for your interest: this survey no longer takes answers."),
            ),
            "rate": (
                _("Too many answers"),
                _("Too many answers came from your network. Please try again in a few minutes."),
            ),
        }
        title, text = messages[reason]
    return _page(
        request,
        "responses/public/unavailable.html",
        {"title": title, "text": text},
        language=language,
        status=status,
    )


def _is_auto(request: HttpRequest) -> bool:
    """The score page's script recording the clicked score (a fetch POST, score alone)."""
    return request.POST.get("auto") == "1"


def _record_from_form(request: HttpRequest, form: AnswerForm, **record: Any) -> Response | None:
    """Save the form through the service; errors are put on the form. None when invalid."""
    if not form.is_valid():
        return None
    auto = _is_auto(request)
    try:
        return response_record(
            score=form.cleaned_data["score"],
            # The script sends the score alone: an earlier comment must survive it.
            comment=None if auto or "comment" not in request.POST else form.cleaned_data["comment"],
            extra_answers=None if auto else form.extra_answers(),
            **record,
        )
    except ValidationError as exc:
        form.add_error(None, exc.messages)
        return None


def _auto_reply(response: Response | None, form: AnswerForm) -> JsonResponse:
    if response is None:
        return JsonResponse({"saved": False, "errors": form.errors.get_json_data()}, status=400)
    return JsonResponse({"saved": True, "score": response.score, "category": response.category})


def _initial(response: Response | None, score: int | None) -> dict[str, Any]:
    initial: dict[str, Any] = {}
    if response is not None:
        initial = {"score": response.score, "comment": response.comment}
        initial |= {f"extra_{k}": str(v) for k, v in response.extra_answers.items()}
    if score is not None:
        initial["score"] = score
    return initial


def _answer_context(
    form: AnswerForm, texts: dict[str, str], score: int | None, auto: bool
) -> dict[str, Any]:
    category = category_of(score) if score is not None else ""
    return {
        "form": form,
        "texts": texts,
        "score_range": range(11),
        "selected": score,
        "category": category,
        "why": texts[f"why_{category}"] if category else _("Tell us why (optional)"),
        "auto": auto,
    }


def _selected(form: AnswerForm) -> int | None:
    value = form["score"].value()
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# --- Invitation answer links -------------------------------------------------------------------


def _open_invitation(
    request: HttpRequest, token: str
) -> tuple[Invitation | None, HttpResponse | None, str]:
    invitation = invitation_for_token(token=token)
    if invitation is None:
        return (
            None,
            _unavailable(request, 404, language=_language(request, "en"), reason="unknown"),
            "en",
        )
    language = _language(request, invitation.language or invitation.survey.default_language)
    if invitation.survey.status == SurveyStatus.ARCHIVED:
        return None, _unavailable(request, 410, language=language, reason="closed"), language
    if invitation.expires_at is not None and invitation.expires_at <= timezone.now():
        return None, _unavailable(request, 410, language=language, reason="expired"), language
    return invitation, None, language


@never_cache
@ensure_csrf_cookie
@require_http_methods(["GET", "HEAD", "POST"])
def answer(request: HttpRequest, token: str, score: int | None = None) -> HttpResponse:
    """The answer page of an invitation; ``score`` from the email's button, if any."""
    invitation, refusal, language = _open_invitation(request, token)
    if refusal is not None:
        return refusal
    assert invitation is not None
    survey = invitation.survey
    if score is not None and not 0 <= score <= 10:
        return _unavailable(request, 404, language=language, reason="unknown")
    if request.method == "POST":
        form = AnswerForm(request.POST, survey=survey, language=language)
        saved = _record_from_form(
            request,
            form,
            invitation=invitation,
            survey=survey,
            channel=invitation.channel,
            language=language,
        )
        if _is_auto(request):
            return _auto_reply(saved, form)
        if saved is not None:
            url = reverse("answer-thanks", kwargs={"token": token})
            return _see_other(f"{url}?{urlencode({'lang': language})}")
        texts = _texts(survey, language)
        return _page(
            request,
            "responses/public/answer.html",
            _answer_context(form, texts, _selected(form), auto=False),
            language=language,
            survey=survey,
            status=400,
        )
    existing = response_for_invitation(invitation=invitation)
    form = AnswerForm(initial=_initial(existing, score), survey=survey, language=language)
    texts = _texts(survey, language)
    selected = score if score is not None else (existing.score if existing else None)
    return _page(
        request,
        "responses/public/answer.html",
        _answer_context(form, texts, selected, auto=score is not None),
        language=language,
        survey=survey,
    )


@never_cache
@require_safe
def answer_thanks(request: HttpRequest, token: str) -> HttpResponse:
    invitation, refusal, language = _open_invitation(request, token)
    if refusal is not None:
        return refusal
    assert invitation is not None
    return _page(
        request,
        "responses/public/thanks.html",
        {
            "texts": _texts(invitation.survey, language),
            "again_url": reverse("answer", kwargs={"token": token}) + f"?lang={language}",
            "promoter": _promoter_link(
                invitation.survey, response_for_invitation(invitation=invitation), language
            ),
        },
        language=language,
        survey=invitation.survey,
    )


def _see_other(url: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = url
    return response


# --- Web links -----------------------------------------------------------------------------------


def _client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the address our own proxies saw (REST_FRAMEWORK NUM_PROXIES)."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    proxies = api_settings.NUM_PROXIES or 0
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    if proxies and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return remote


def _rate_limited(request: HttpRequest, kiosk_survey: Survey | None = None) -> bool:
    """Counts this POST; True beyond the limit in the current window (atomic INCR).

    The open link: LINK_POSTS_PER_WINDOW per client IP, all surveys together. A kiosk
    (``kiosk_survey``): KIOSK_POSTS_PER_WINDOW per survey and IP, a budget of its own, so the
    customers answering from their phones on the shop's network and its kiosk do not use up
    each other's answers.
    """
    limit = LINK_POSTS_PER_WINDOW
    name = f"answer-link:{_client_ip(request)}"
    if kiosk_survey is not None:
        limit = KIOSK_POSTS_PER_WINDOW
        name = f"answer-kiosk:{kiosk_survey.public_id}:{_client_ip(request)}"
    return window_counts([name], seconds=LINK_WINDOW_SECONDS).over(limit)


def _browser_cookie(request: HttpRequest) -> tuple[str, bool]:
    """The browser's random id and whether it is new (to be set on the response)."""
    value = request.COOKIES.get(BROWSER_COOKIE, "")
    if _BROWSER_COOKIE_RE.match(value):
        return value, False
    return secrets.token_urlsafe(32), True


def _signed_email(request: HttpRequest, survey: Survey) -> str | None:
    """``?email=…&sig=…`` when the signature is the company's; otherwise no identity.

    A bad signature does not stop the respondent: the answer is taken without identity.
    """
    email = request.GET.get("email", "").strip()
    signature = request.GET.get("sig", "").strip()
    if not email or not signature or survey.anonymous:
        return None
    if not link_signature_valid(company=survey.company, email=email, signature=signature):
        return None
    return email.lower()


def _link_contact(survey: Survey, email: str | None) -> Contact | None:
    if email is None:
        return None
    from surveys.services.contacts import contact_upsert

    try:
        contact, _created = contact_upsert(company=survey.company, email=email)
    except ValidationError:
        return None
    return contact


def _open_link(
    request: HttpRequest, public_id: str
) -> tuple[Survey | None, HttpResponse | None, str]:
    survey = survey_for_link(public_id=public_id)
    if survey is None or survey.status == SurveyStatus.DRAFT:
        return (
            None,
            _unavailable(request, 404, language=_language(request, "en"), reason="unknown"),
            "en",
        )
    language = _language(request, survey.default_language)
    if survey.status != SurveyStatus.ACTIVE:
        return None, _unavailable(request, 410, language=language, reason="closed"), language
    return survey, None, language


def _kiosk_key(request: HttpRequest, survey: Survey) -> str:
    """The kiosk key of ``?kiosk=`` when it is this survey's; else "" (the open link)."""
    from surveys.services.links import KIOSK_PARAMETER, kiosk_key_valid

    key = str(request.GET.get(KIOSK_PARAMETER, ""))
    return key if kiosk_key_valid(survey, key) else ""


def _kiosk_query(kiosk: str, language: str | None = None) -> str:
    """The query string of a kiosk page (the key, and the language when one is kept)."""
    from surveys.services.links import KIOSK_PARAMETER

    query = {KIOSK_PARAMETER: kiosk}
    if language:
        query["lang"] = language
    return urlencode(query)


def _kiosk_person(request: HttpRequest) -> str:
    """The person now answering at a kiosk: a random id the question page carries in its
    form, new for each page shown (so each person is a new response; one person's score and
    comment, or a corrected form, stay one)."""
    value = str(request.POST.get("kiosk_person", ""))
    return value if _KIOSK_PERSON_RE.match(value) else secrets.token_urlsafe(32)


@never_cache
@ensure_csrf_cookie
@require_http_methods(["GET", "HEAD", "POST"])
def link(request: HttpRequest, public_id: str) -> HttpResponse:
    """A survey's open web link: one answer per browser, a rate limit per IP.

    In kiosk mode (``?kiosk=<the survey's kiosk key>``) the device answers for many people:
    each question page is a new person (a new response), nothing of the one before is shown,
    and the thank-you page returns to a fresh question.
    """
    survey, refusal, language = _open_link(request, public_id)
    if refusal is not None:
        return refusal
    assert survey is not None
    kiosk = _kiosk_key(request, survey)
    if kiosk:
        return _kiosk_link(request, survey, kiosk, language)
    cookie, new_cookie = _browser_cookie(request)
    browser_key = browser_key_for(cookie)
    if request.method == "POST":
        if _rate_limited(request):
            return _unavailable(request, 429, language=language, reason="rate")
        saved, form = _link_record(request, survey, language, browser_key)
        if saved is not None:
            url = reverse("link-thanks", kwargs={"public_id": public_id})
            page = _see_other(f"{url}?{urlencode({'lang': language})}")
        else:
            page = _link_page(request, survey, form, language, status=400)
    else:
        existing = response_for_browser(survey=survey, browser_key=browser_key)
        form = AnswerForm(initial=_initial(existing, None), survey=survey, language=language)
        page = _link_page(
            request, survey, form, language, selected=existing.score if existing else None
        )
    if new_cookie:
        page.set_cookie(
            BROWSER_COOKIE,
            cookie,
            max_age=BROWSER_COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
            path="/l/",
        )
    return page


def _link_record(
    request: HttpRequest, survey: Survey, language: str, browser_key: str, *, kiosk: bool = False
) -> tuple[Response | None, AnswerForm]:
    """Record a web-link answer. A kiosk answers for many people: a signed email in its
    address would name them all, so it identifies no one."""
    form = AnswerForm(request.POST, survey=survey, language=language)
    identified = form.is_valid() and not kiosk
    saved = _record_from_form(
        request,
        form,
        invitation=None,
        survey=survey,
        channel=ResponseChannel.LINK,
        language=language,
        contact=_link_contact(survey, _signed_email(request, survey)) if identified else None,
        browser_key=browser_key,
    )
    return saved, form


def _link_page(
    request: HttpRequest,
    survey: Survey,
    form: AnswerForm,
    language: str,
    *,
    status: int = 200,
    selected: int | None = None,
    kiosk: dict[str, Any] | None = None,
) -> HttpResponse:
    context = _answer_context(
        form,
        _texts(survey, language),
        _selected(form) if form.is_bound else selected,
        auto=False,
    )
    return _page(
        request,
        "responses/public/answer.html",
        {**context, "kiosk": kiosk or {}},
        language=language,
        survey=survey,
        status=status,
    )


def _kiosk_link(request: HttpRequest, survey: Survey, kiosk: str, language: str) -> HttpResponse:
    """The web link on a kiosk: a fresh question per person, no cookie, its own rate limit."""
    public_id = survey.public_id
    fresh = reverse("link", kwargs={"public_id": public_id}) + "?" + _kiosk_query(kiosk)
    if request.method == "POST":
        if _rate_limited(request, kiosk_survey=survey):
            return _unavailable(request, 429, language=language, reason="rate")
        person = _kiosk_person(request)
        saved, form = _link_record(
            request, survey, language, browser_key_for(f"kiosk:{public_id}:{person}"), kiosk=True
        )
        if saved is not None:
            url = reverse("link-thanks", kwargs={"public_id": public_id})
            return _see_other(f"{url}?{_kiosk_query(kiosk, language)}")
        return _link_page(
            request,
            survey,
            form,
            language,
            status=400,
            kiosk={"person": person, "reset_url": fresh, "idle_seconds": KIOSK_IDLE_SECONDS},
        )
    form = AnswerForm(survey=survey, language=language)
    return _link_page(
        request,
        survey,
        form,
        language,
        kiosk={
            "person": secrets.token_urlsafe(32),
            "reset_url": fresh,
            "idle_seconds": KIOSK_IDLE_SECONDS,
        },
    )


@never_cache
@require_safe
def link_thanks(request: HttpRequest, public_id: str) -> HttpResponse:
    survey, refusal, language = _open_link(request, public_id)
    if refusal is not None:
        return refusal
    assert survey is not None
    kiosk = _kiosk_key(request, survey)
    if kiosk:
        # The next person starts in the survey's own language, with nothing of this one.
        fresh = reverse("link", kwargs={"public_id": public_id}) + "?" + _kiosk_query(kiosk)
        return _page(
            request,
            "responses/public/thanks.html",
            {
                "texts": _texts(survey, language),
                "kiosk": {"reset_url": fresh, "reset_seconds": KIOSK_RESET_SECONDS},
            },
            language=language,
            survey=survey,
        )
    cookie = request.COOKIES.get(BROWSER_COOKIE, "")
    response = (
        response_for_browser(survey=survey, browser_key=browser_key_for(cookie))
        if _BROWSER_COOKIE_RE.match(cookie)
        else None
    )
    return _page(
        request,
        "responses/public/thanks.html",
        {
            "texts": _texts(survey, language),
            "again_url": reverse("link", kwargs={"public_id": public_id}) + f"?lang={language}",
            "promoter": _promoter_link(survey, response, language),
        },
        language=language,
        survey=survey,
    )
