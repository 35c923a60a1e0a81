"""The triage inbox under /c/<company_slug>/inbox/: follow-ups (agents work them, viewers read)
and the alert rules (admins). Plain links and forms: every action works from the keyboard
and without JavaScript."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from companies.models import Company, Membership, Role, User
from companies.permissions import company_view
from responses.alerts import alert_rule_delete, alert_rule_save, alert_rules_for
from responses.followups import (
    followup_add_note,
    followup_assign,
    followup_set_status,
    followups_bulk_assign,
    followups_bulk_resolve,
    inbox_settings_of,
    inbox_settings_update,
)
from responses.followups_forms import (
    AlertRuleForm,
    InboxSettingsForm,
    NoteForm,
    ReplyForm,
    StatusForm,
)
from responses.followups_replies import followup_reply_send, reply_possible
from responses.followups_selectors import (
    INBOX_VIEWS,
    InboxFilters,
    assignable_members,
    followup_get,
    followup_thread,
    followups_list,
    inbox_counts,
    loop_metrics,
)
from responses.models import AlertRule, Followup, FollowupStatus, ResolutionReason
from responses.selectors import contact_responses, surveys_with_responses

PAGE_SIZE = 50
_SEGMENT_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_STATUS_FILTERS = ("", "any", *FollowupStatus.values)


def _company(request: HttpRequest) -> Company:
    return request.company  # type: ignore[attr-defined]


def _membership(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined]


def _actor(request: HttpRequest) -> User:
    """The logged-in member (the middleware let only members in)."""
    user = request.user
    assert isinstance(user, User)
    return user


def _int_or_none(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 <= number <= 10 else None


def _segment(value: str) -> tuple[str, str] | None:
    """``key=value`` (a contact property); None when blank or malformed. Keys are plain
    identifiers: anything else (``__`` lookups included) is refused."""
    key, sep, wanted = value.partition("=")
    key, wanted = key.strip(), wanted.strip()
    if not sep or not wanted or not _SEGMENT_KEY.match(key) or "__" in key:
        return None
    return key, wanted


def _cursor(followup: Followup) -> str:
    raw = f"{followup.created_at.isoformat()}|{followup.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_cursor(value: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, _sep, pk = raw.partition("|")
        return datetime.fromisoformat(stamp), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


# --- The list ----------------------------------------------------------------------------------


def _default_view(membership: Membership, counts: dict[str, int]) -> str:
    """Where the member's work is: their own open follow-ups, else the unassigned ones
    waiting for someone, else everything (a viewer reads everything)."""
    if membership.role == Role.VIEWER:
        return "all"
    for view in ("mine", "unassigned"):
        if counts[view]:
            return view
    return "all"


@require_safe
@company_view(Role.VIEWER)
def inbox(request: HttpRequest) -> HttpResponse:
    """Mine / unassigned / overdue / all, filtered by survey, score and status; newest first,
    keyset pages. Constant queries whatever the number of follow-ups."""
    company, membership = _company(request), _membership(request)
    surveys = surveys_with_responses(company=company)
    by_id = {s.public_id: s for s in surveys}
    counts = inbox_counts(company=company, membership=membership)
    view = request.GET.get("view", "")
    if view not in INBOX_VIEWS:
        view = _default_view(membership, counts)
    status = request.GET.get("status", "")
    status = status if status in _STATUS_FILTERS else ""
    survey = by_id.get(request.GET.get("survey", ""))
    filters = InboxFilters(
        view=view,
        survey_id=survey.pk if survey else None,
        status=status,
        score_min=_int_or_none(request.GET.get("score_min")),
        score_max=_int_or_none(request.GET.get("score_max")),
        segment=_segment(request.GET.get("segment", "")),
    )
    rows = followups_list(company=company, membership=membership, filters=filters)
    after = _parse_cursor(request.GET.get("after", ""))
    if after is not None:
        stamp, pk = after
        rows = rows.filter(created_at__lte=stamp).exclude(created_at=stamp, id__gte=pk)
    page = list(rows[: PAGE_SIZE + 1])
    next_query = ""
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        query = request.GET.copy()
        query["after"] = _cursor(page[-1])
        next_query = query.urlencode()
    context: dict[str, Any] = {
        "view": view,
        "views": [
            ("mine", _("Mine")),
            ("unassigned", _("Unassigned")),
            ("overdue", _("Overdue")),
            ("all", _("All")),
        ],
        "counts": counts,
        "followups": page,
        "next_query": next_query,
        "surveys": surveys,
        "survey": survey,
        "status": status,
        "statuses": FollowupStatus.choices,
        "score_min": filters.score_min,
        "score_max": filters.score_max,
        "segment": request.GET.get("segment", "") if filters.segment else "",
        "members": assignable_members(company=company),
        "resolutions": ResolutionReason.choices,
        "metrics": loop_metrics(company=company),
        "filter_query": _filter_query(request),
    }
    return render(request, "responses/inbox/list.html", context)


def _filter_query(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("after", None)
    return query.urlencode()


def _back_to_list(request: HttpRequest) -> HttpResponseRedirect:
    url = reverse("inbox:list", kwargs={"company_slug": _company(request).slug})
    query = request.POST.get("return_query", "")
    # Only a query string of our own list: never an arbitrary URL (no open redirect).
    if query and "/" not in query and ":" not in query:
        url += "?" + query
    return HttpResponseRedirect(url)


def _member_from(request: HttpRequest, value: str) -> Membership | None:
    """The chosen assignee: "me", a member's public id of this company, or "" for nobody."""
    if value == "me":
        return _membership(request)
    if not value:
        return None
    for member in assignable_members(company=_company(request)):
        if member.public_id == value:
            return member
    raise ValidationError({"assignee": _("Choose a teammate who works the inbox.")})


@require_POST
@company_view(Role.VIEWER, write_role=Role.AGENT)
def inbox_bulk(request: HttpRequest) -> HttpResponse:
    """Assign or resolve the ticked follow-ups."""
    company = _company(request)
    ids = request.POST.getlist("followup")
    action = request.POST.get("action", "")
    try:
        if action == "assign":
            assignee = _member_from(request, request.POST.get("assignee", ""))
            done = followups_bulk_assign(
                company=company, public_ids=ids, assignee=assignee, actor=_actor(request)
            )
            messages.success(request, _("%(n)d follow-up(s) assigned.") % {"n": done})
        elif action == "resolve":
            done = followups_bulk_resolve(
                company=company,
                public_ids=ids,
                resolution=request.POST.get("resolution", ""),
                actor=_actor(request),
            )
            messages.success(request, _("%(n)d follow-up(s) resolved.") % {"n": done})
        else:
            messages.error(request, _("Choose what to do with the selected follow-ups."))
    except ValidationError as err:
        messages.error(request, " ".join(err.messages))
    return _back_to_list(request)


# --- One follow-up -----------------------------------------------------------------------------


def _followup_or_404(request: HttpRequest, followup_id: str) -> Followup:
    followup = followup_get(company=_company(request), public_id=followup_id)
    if followup is None:
        raise Http404
    return followup


@require_safe
@company_view(Role.VIEWER)
def followup_detail(request: HttpRequest, followup_id: str) -> HttpResponse:
    """The response, the contact and their earlier answers (never for an anonymous survey),
    the thread, and the actions."""
    company = _company(request)
    followup = _followup_or_404(request, followup_id)
    response = followup.response
    anonymous = followup.survey.anonymous
    contact = None if anonymous else response.contact
    earlier = (
        [r for r in contact_responses(company=company, contact=contact) if r.pk != response.pk]
        if contact is not None
        else []
    )
    context: dict[str, Any] = {
        "followup": followup,
        "response": response,
        "anonymous": anonymous,
        "contact": contact,
        "properties": {} if anonymous else response.contact_properties,
        "earlier": earlier,
        "events": followup_thread(company=company, followup=followup),
        "members": assignable_members(company=company),
        "status_form": StatusForm(
            initial={"status": followup.status, "resolution": followup.resolution}
        ),
        "note_form": NoteForm(),
        "can_reply": reply_possible(followup),
        "reply_form": ReplyForm(prefix="reply", initial={"subject": _("About your feedback")}),
        "statuses": FollowupStatus.choices,
        "resolutions": ResolutionReason.choices,
    }
    return render(request, "responses/inbox/followup.html", context)


def _to_followup(request: HttpRequest, followup: Followup) -> HttpResponseRedirect:
    return redirect(
        "inbox:followup", company_slug=_company(request).slug, followup_id=followup.public_id
    )


@require_POST
@company_view(Role.VIEWER, write_role=Role.AGENT)
def followup_assign_view(request: HttpRequest, followup_id: str) -> HttpResponse:
    followup = _followup_or_404(request, followup_id)
    try:
        assignee = _member_from(request, request.POST.get("assignee", ""))
        followup_assign(
            company=_company(request), followup=followup, assignee=assignee, actor=_actor(request)
        )
    except ValidationError as err:
        messages.error(request, " ".join(err.messages))
    return _to_followup(request, followup)


@require_POST
@company_view(Role.VIEWER, write_role=Role.AGENT)
def followup_status_view(request: HttpRequest, followup_id: str) -> HttpResponse:
    followup = _followup_or_404(request, followup_id)
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            followup_set_status(
                company=_company(request),
                followup=followup,
                status=form.cleaned_data["status"],
                resolution=form.cleaned_data["resolution"],
                actor=_actor(request),
            )
        except ValidationError as err:
            messages.error(request, " ".join(err.messages))
    else:
        messages.error(request, _("Choose a status."))
    return _to_followup(request, followup)


@require_POST
@company_view(Role.VIEWER, write_role=Role.AGENT)
def followup_note_view(request: HttpRequest, followup_id: str) -> HttpResponse:
    followup = _followup_or_404(request, followup_id)
    form = NoteForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(_("Write a note first."))
        followup_add_note(
            company=_company(request),
            followup=followup,
            body=form.cleaned_data["body"],
            actor=_actor(request),
        )
    except ValidationError as err:
        messages.error(request, " ".join(err.messages))
    return _to_followup(request, followup)


@require_POST
@company_view(Role.VIEWER, write_role=Role.AGENT)
def followup_reply_view(request: HttpRequest, followup_id: str) -> HttpResponse:
    """Email the customer (never possible for an anonymous survey's respondent)."""
    followup = _followup_or_404(request, followup_id)
    form = ReplyForm(request.POST, prefix="reply")
    try:
        if not form.is_valid():
            raise ValidationError(_("Write a subject and a message."))
        delivery = followup_reply_send(
            company=_company(request),
            followup=followup,
            actor=_actor(request),
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["body"],
        )
    except ValidationError as err:
        messages.error(request, " ".join(err.messages))
    else:
        if delivery.status in {"sent", "queued"}:
            messages.success(request, _("Reply sent."))
        else:
            messages.error(
                request, _("The reply could not be sent: %(why)s") % {"why": delivery.error}
            )
    return _to_followup(request, followup)


# --- Rules (admins) ----------------------------------------------------------------------------


@company_view(Role.ADMIN)
def rule_list(request: HttpRequest) -> HttpResponse:
    """The rules, and the inbox settings (SLA, round-robin); POST saves the settings."""
    company = _company(request)
    current = inbox_settings_of(company=company)
    if request.method == "POST":
        form = InboxSettingsForm(request.POST)
        if form.is_valid():
            inbox_settings_update(company=company, **form.cleaned_data)
            messages.success(request, _("Inbox settings saved."))
            return redirect("inbox:rules", company_slug=company.slug)
    else:
        form = InboxSettingsForm(
            initial={"sla_hours": current.sla_hours, "round_robin": current.round_robin}
        )
    return render(
        request,
        "responses/inbox/rules.html",
        {"rules": alert_rules_for(company=company), "settings_form": form},
    )


def _rule_or_404(company: Company, rule_id: str) -> AlertRule:
    rule = AlertRule.objects.for_company(company).filter(public_id=rule_id).first()
    if rule is None:
        raise Http404
    return rule


def _rule_form_page(request: HttpRequest, rule: AlertRule | None) -> HttpResponse:
    company = _company(request)
    if request.method == "POST":
        form = AlertRuleForm(request.POST, company=company)
        if form.is_valid():
            try:
                alert_rule_save(company=company, rule=rule, **form.rule_fields())
            except ValidationError as err:
                form.add_error(None, err)
            else:
                messages.success(request, _("Rule saved."))
                return redirect("inbox:rules", company_slug=company.slug)
    else:
        initial = AlertRuleForm.initial_for(rule) if rule is not None else None
        form = AlertRuleForm(initial=initial, company=company)
    return render(request, "responses/inbox/rule_form.html", {"form": form, "rule": rule})


@company_view(Role.ADMIN)
def rule_create(request: HttpRequest) -> HttpResponse:
    return _rule_form_page(request, None)


@company_view(Role.ADMIN)
def rule_edit(request: HttpRequest, rule_id: str) -> HttpResponse:
    return _rule_form_page(request, _rule_or_404(_company(request), rule_id))


@require_POST
@company_view(Role.ADMIN)
def rule_delete(request: HttpRequest, rule_id: str) -> HttpResponse:
    company = _company(request)
    alert_rule_delete(company=company, rule=_rule_or_404(company, rule_id))
    messages.success(request, _("Rule deleted."))
    return redirect("inbox:rules", company_slug=company.slug)
