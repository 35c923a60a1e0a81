"""Delighted's Autopilot at ``/v1/autopilot/{email|sms}`` (spec ``delighted-api.md`` §6.4–6.7):
the platform's configuration, and its memberships (list with a cursor, add a person or
replace their Autopilot properties, remove a person), on the key's survey's recurring
programme (surveys/services/autopilot.py). One route per platform: ``channel`` comes from
the URL configuration, so any other platform is Delighted's 404.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response as ApiResponse

from delighted_compat.api import formats, selectors, services
from delighted_compat.api.base import Unprocessable, cursor_loads, cursor_page
from delighted_compat.api.views import ProjectAPIView, _clean_address
from surveys.selectors import autopilot_config_get


class AutopilotAPIView(ProjectAPIView):
    """One platform's Autopilot: ``channel`` is ``email`` or ``sms`` (set in the URLs)."""

    channel: str = ""


class AutopilotConfigurationApi(AutopilotAPIView):
    """``GET /v1/autopilot/{platform}``: the programme's state (off, with nulls, when the
    key's survey has none on the platform)."""

    def get(self, request: Request) -> ApiResponse:
        survey = self.existing_survey
        program = (
            None
            if survey is None
            else autopilot_config_get(company=self.company, survey=survey, channel=self.channel)
        )
        return ApiResponse(formats.autopilot_config_json(self.channel, program))


class AutopilotMembershipsApi(AutopilotAPIView):
    """``GET`` (cursor pages, ``person_id``/``person_email``/``person_phone_number``),
    ``POST`` (add, or replace the properties) and ``DELETE`` (remove: exactly one
    identifier, in the body or the query string) ``/v1/autopilot/{platform}/memberships``."""

    def get(self, request: Request) -> ApiResponse:
        p = self.params
        scope = f"autopilot-{self.channel}"
        after_id = None
        page_info = p.text("page_info")
        if page_info:
            values = cursor_loads(scope, page_info)
            if len(values) != 1 or not isinstance(values[0], int):
                raise Unprocessable({"page_info": [_("is invalid")]})
            after_id = values[0]
        per_page = p.per_page()
        survey = self.existing_survey
        if survey is None:
            return ApiResponse([])
        members = selectors.autopilot_memberships(
            company=self.company,
            survey=survey,
            channel=self.channel,
            person_id=p.text("person_id") or None,
            email=_clean_address(self.company, "email", p.text("person_email")),
            phone=_clean_address(self.company, "phone_number", p.text("person_phone_number")),
            after_id=after_id,
        )
        items = list(members[: per_page + 1])
        people = selectors.contacts_with_dates(
            company=self.company, ids=[m.contact_id for m in items[:per_page]]
        )
        return cursor_page(
            request,
            scope=scope,
            items=items,
            per_page=per_page,
            key=lambda m: (m.pk,),
            render=lambda rows: [
                formats.autopilot_membership_json(m, people.get(m.contact_id, m.contact))
                for m in rows
            ],
        )

    def post(self, request: Request) -> ApiResponse:
        p = self.params
        member = services.autopilot_membership_add(
            company=self.company,
            survey=self.existing_survey,
            channel=self.channel,
            data=services.MembershipInput(
                person_id=p.text("person_id"),
                email=p.text("person_email"),
                phone_number=p.text("person_phone_number"),
                name=p.text("person_name"),
                properties=p.mapping("properties"),
            ),
        )
        return ApiResponse(
            {
                "person": formats.autopilot_person_json(member.contact),
                "properties": dict(member.properties or {}),
            }
        )

    def delete(self, request: Request) -> ApiResponse:
        p = self.params
        contact = services.autopilot_membership_remove(
            company=self.company,
            survey=self.existing_survey,
            channel=self.channel,
            person_id=p.text("person_id"),
            email=p.text("person_email"),
            phone_number=p.text("person_phone_number"),
        )
        if contact is None:
            raise exceptions.NotFound()
        return ApiResponse({"person": formats.autopilot_person_json(contact)})
