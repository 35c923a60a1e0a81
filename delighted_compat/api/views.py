"""Delighted's ``/v1/`` endpoints (spec ``delighted-api.md`` §3–6; Autopilot lives apart).

Thin views: parameters through ``DelightedAPIView.params``, one service or selector, a
format from ``formats``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response as ApiResponse

from companies.models import ApiKey
from delighted_compat.api import formats, selectors, services
from delighted_compat.api.base import (
    DelightedAPIView,
    Params,
    Unprocessable,
    cursor_loads,
    cursor_page,
)
from notifications.models import Channel, SuppressionReason
from privacy.models import RequestVia
from privacy.selectors import person_of_contact
from privacy.services import Actor, person_erase
from responses.models import Response
from surveys.models import Contact, Survey
from surveys.services.contacts import contact_clean


class ProjectAPIView(DelightedAPIView):
    """An endpoint acting on the key's Delighted project (one of our surveys).

    Writes use ``survey`` (the company's default survey is created on first use); reads use
    ``existing_survey`` and create nothing (no survey yet: nothing to show).
    """

    @property
    def survey(self) -> Survey:
        return services.project_survey(api_key=self.api_key)

    @property
    def existing_survey(self) -> Survey | None:
        return services.project_survey_existing(api_key=self.api_key)

    def _trend_or(self, survey: Survey | None) -> Survey | None:
        """A Delighted trend is one of the company's surveys (by id): that one, if given."""
        trend = self.params.text("trend")
        if not trend:
            return survey
        found = selectors.trend_survey(company=self.company, trend=trend)
        if found is None:
            raise Unprocessable({"trend": [_("is unknown")]})
        return found


def _clean_address(company: Any, field: str, value: str | None) -> str | None:
    """An email or phone number in our normal form (422 when it is not one)."""
    if not value:
        return None
    if field == "phone_number":
        return str(contact_clean(company=company, phone=value)["phone"])
    return str(contact_clean(company=company, email=value)["email"])


# --- People ------------------------------------------------------------------------------------


class PeopleApi(ProjectAPIView):
    """``POST /v1/people`` (create or update, and schedule a survey) and ``GET`` (cursor)."""

    def post(self, request: Request) -> ApiResponse:
        p = self.params
        data = services.PersonInput(
            email=p.text("email"),
            phone_number=p.text("phone_number"),
            name=p.text("name"),
            properties=p.mapping("properties"),
            channel=p.text("channel") or Channel.EMAIL,
            delay=p.integer("delay", default=0) or 0,
            send=p.boolean("send", default=True),
            last_sent_at=p.timestamp("last_sent_at"),
            email_update=p.text("email_update"),
            phone_number_update=p.text("phone_number_update"),
        )
        survey = self.survey if data.send else None
        result = services.person_create(company=self.company, survey=survey, data=data)
        contact = (
            selectors.with_person_dates(
                Contact.objects.for_company(self.company).filter(pk=result.contact.pk),
                company=self.company,
            )
        ).get()
        return ApiResponse(
            formats.person_created_json(contact, result.invitation),
            status=201 if result.created else 200,
        )

    def get(self, request: Request) -> ApiResponse:
        p = self.params
        email, phone = p.text("email"), p.text("phone_number")
        if email and phone:
            raise Unprocessable({"email": [_("give an email or a phone number, not both")]})
        after = None
        page_info = p.text("page_info")
        if page_info:
            stamp, pk = cursor_loads("people", page_info)
            after = (_from_iso(stamp), int(pk))
        per_page = p.per_page()
        offset = 0
        if after is None and "page" in p:  # ``Person.all(page=…)``: pages as an offset
            offset = (p.page()[0] - 1) * per_page
        people = selectors.people_list(
            company=self.company,
            since=p.timestamp("since"),
            until=p.timestamp("until"),
            email=_clean_address(self.company, "email", email),
            phone=_clean_address(self.company, "phone_number", phone),
            after=after,
        )
        items = list(people[offset : offset + per_page + 1])
        return cursor_page(
            request,
            scope="people",
            items=items,
            per_page=per_page,
            key=lambda c: (c.created_at.isoformat(), c.pk),
            render=lambda rows: [formats.person_json(c) for c in rows],
        )


def _from_iso(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise Unprocessable({"page_info": [_("is invalid")]}) from exc


class PersonApi(ProjectAPIView):
    """``DELETE /v1/people/{id | email:… | phone_number:…}``: the person and all their data."""

    def delete(self, request: Request, identifier: str) -> ApiResponse:
        contact = selectors.person_get(company=self.company, identifier=identifier)
        if contact is None:
            raise exceptions.NotFound()
        # The full erasure of the web app and /api/v1/ (privacy.services), recorded; done
        # before answering, though Delighted's 202 would allow later.
        person = person_of_contact(company=self.company, contact=contact)
        api_key = request.auth
        assert isinstance(api_key, ApiKey)
        person_erase(
            company=self.company,
            person=person,
            actor=Actor(via=RequestVia.DELIGHTED_API, api_key=api_key),
        )
        return ApiResponse({"ok": True}, status=202)


class PendingSurveyRequestsApi(ProjectAPIView):
    """``DELETE /v1/people/{email}/survey_requests/pending``: cancel what is not sent yet."""

    def delete(self, request: Request, email: str) -> ApiResponse:
        contact = selectors.person_by_email(company=self.company, email=email)
        if contact is None:
            raise exceptions.NotFound()
        survey = self.existing_survey
        if survey is not None:
            services.pending_requests_delete(company=self.company, survey=survey, contact=contact)
        return ApiResponse({"ok": True})


# --- Survey responses ----------------------------------------------------------------------------


def _expand(p: Params) -> bool:
    return "person" in p.strings("expand")


def _person_from(company: Any, value: Any, field: str = "person") -> Contact:
    """A person given by id (string or number) or as an object with an ``id``."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or isinstance(value, bool | list | dict) or str(value) == "":
        raise Unprocessable({field: [_("can't be blank")]})
    contact = Contact.objects.for_company(company).filter(public_id=str(value)).first()
    if contact is None:
        raise Unprocessable({field: [_("is unknown")]})
    return contact


class SurveyResponsesApi(ProjectAPIView):
    """``POST /v1/survey_responses`` (add one) and ``GET`` (numbered pages)."""

    def post(self, request: Request) -> ApiResponse:
        p = self.params
        contact = _person_from(self.company, p.raw("person"))
        score = p.integer("score")
        if score is None:
            raise Unprocessable({"score": [_("can't be blank")]})
        response = services.survey_response_create(
            company=self.company,
            survey=self.survey,
            contact=contact,
            score=score,
            comment=p.text("comment"),
            person_properties=p.mapping("person_properties"),
            created_at=p.timestamp("created_at"),
        )
        response = (
            Response.objects.for_company(self.company)
            .select_related("contact", "survey")
            .get(pk=response.pk)
        )
        return ApiResponse(self.render([response], expand=_expand(p))[0], status=201)

    def get(self, request: Request) -> ApiResponse:
        p = self.params
        order = p.text("order") or "asc"
        if order not in selectors.RESPONSE_ORDERS:
            raise Unprocessable(
                {"order": [_("must be asc, desc, asc:updated_at or desc:updated_at")]}
            )
        survey = self._trend_or(self.existing_survey)
        contact: Contact | None = None
        person_id, person_email = p.text("person_id"), p.text("person_email")
        if person_id or person_email:
            contact = (
                Contact.objects.for_company(self.company).filter(public_id=person_id).first()
                if person_id
                else selectors.person_by_email(company=self.company, email=person_email or "")
            )
            if contact is None:
                return ApiResponse([])
        page, per_page = p.page()
        if survey is None:
            return ApiResponse([])
        responses = selectors.survey_responses_list(
            company=self.company,
            survey=survey,
            since=p.timestamp("since"),
            until=p.timestamp("until"),
            updated_since=p.timestamp("updated_since"),
            updated_until=p.timestamp("updated_until"),
            contact=contact,
            order=order,
        )
        rows = list(responses[(page - 1) * per_page : page * per_page])
        return ApiResponse(self.render(rows, expand=_expand(p)))

    def render(self, rows: list[Response], *, expand: bool) -> list[dict[str, Any]]:
        return render_responses(self.company, rows, expand=expand)


def render_responses(company: Any, rows: list[Response], *, expand: bool) -> list[dict[str, Any]]:
    people: dict[int, dict[str, Any]] = {}
    if expand:
        ids = [r.contact_id for r in rows if r.contact_id is not None]
        found = selectors.contacts_with_dates(company=company, ids=ids)
        people = {pk: formats.person_json(c) for pk, c in found.items()}
    return [
        formats.response_json(
            r,
            slug=company.slug,
            person=people.get(r.contact_id) if r.contact_id else None,
            expand_person=expand,
        )
        for r in rows
    ]


class SurveyResponseApi(ProjectAPIView):
    """``GET /v1/survey_responses/{id}`` and ``PUT`` (the whole object; read-only fields
    ignored; ``person`` as an id or an object)."""

    def _get(self, response_id: str) -> Response:
        survey = self.existing_survey
        response = (
            None
            if survey is None
            else selectors.survey_response_get(
                company=self.company, survey=survey, public_id=response_id
            )
        )
        if response is None:
            raise exceptions.NotFound()
        return response

    def get(self, request: Request, response_id: str) -> ApiResponse:
        response = self._get(response_id)
        return ApiResponse(
            render_responses(self.company, [response], expand=_expand(self.params))[0]
        )

    def put(self, request: Request, response_id: str) -> ApiResponse:
        p = self.params
        with transaction.atomic():
            response = self._get(response_id)
            contact = _person_from(self.company, p.raw("person")) if "person" in p else None
            updated = services.survey_response_update(
                company=self.company,
                response=response,
                contact=contact,
                score=p.integer("score"),
                comment=p.text("comment"),
                person_properties=p.mapping("person_properties"),
            )
        return ApiResponse(render_responses(self.company, [updated], expand=_expand(p))[0])


# --- Metrics -----------------------------------------------------------------------------------


class MetricsApi(ProjectAPIView):
    """``GET /v1/metrics``: NPS and the breakdown (``since``/``until``/``trend``)."""

    def get(self, request: Request) -> ApiResponse:
        p = self.params
        survey = self._trend_or(self.existing_survey)
        if survey is None:
            return ApiResponse(formats.metrics_json([0] * 11))
        counts = selectors.metrics_counts(
            company=self.company,
            survey=survey,
            since=p.timestamp("since"),
            until=p.timestamp("until"),
        )
        return ApiResponse(formats.metrics_json(counts))


# --- Unsubscribes and bounces ------------------------------------------------------------------


class _SuppressionListApi(DelightedAPIView):
    reason: str = ""
    time_field: str = ""

    def get(self, request: Request) -> ApiResponse:
        p = self.params
        page, per_page = p.page()
        rows = list(
            selectors.suppressions_list(
                company=self.company,
                reason=self.reason,
                since=p.timestamp("since"),
                until=p.timestamp("until"),
            )[(page - 1) * per_page : page * per_page]
        )
        people = selectors.contacts_by_email(
            company=self.company, emails=[row.address for row in rows]
        )
        return ApiResponse(
            [
                formats.suppression_json(row, people.get(row.address), time_field=self.time_field)
                for row in rows
            ]
        )


class UnsubscribesApi(_SuppressionListApi):
    """``POST /v1/unsubscribes`` (``person_email``) and ``GET`` (numbered pages)."""

    reason = SuppressionReason.UNSUBSCRIBED
    time_field = "unsubscribed_at"

    def post(self, request: Request) -> ApiResponse:
        email = self.params.text("person_email")
        if not email:
            raise Unprocessable({"person_email": [_("can't be blank")]})
        try:
            services.unsubscribe_create(company=self.company, email=email)
        except ValidationError as exc:
            raise Unprocessable({"person_email": exc.messages}) from exc
        return ApiResponse({"ok": True})


class BouncesApi(_SuppressionListApi):
    """``GET /v1/bounces`` (numbered pages)."""

    reason = SuppressionReason.BOUNCED
    time_field = "bounced_at"
