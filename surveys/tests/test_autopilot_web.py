"""The recurring survey's pages: settings, members (paginated), add a segment, remove."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company, Role
from conftest import Persona
from surveys.models import AutopilotMember, AutopilotProgram, Contact, Survey
from surveys.services.autopilot import (
    autopilot_configure,
    autopilot_joins_run,
    autopilot_member_add,
)
from surveys.tests.sending_factories import active_survey
from surveys.views_autopilot import MEMBERS_PAGE_SIZE

pytestmark = pytest.mark.django_db


def _url(name: str, company: Company, survey: Survey) -> str:
    return reverse(
        f"surveys:{name}", kwargs={"company_slug": company.slug, "survey_id": survey.public_id}
    )


def _settings(**overrides: Any) -> dict[str, Any]:
    return {
        "channel": "email",
        "active": "on",
        "cadence_days": "60",
        "first_delay_days": "3",
        **overrides,
    }


def _members(company: Company, survey: Survey, count: int, prefix: str) -> list[Contact]:
    people = Contact.objects.bulk_create(
        Contact(company=company, email=f"{prefix}{n}@example.com", properties={"plan": "gold"})
        for n in range(count)
    )
    program = AutopilotProgram.objects.for_company(company).get(survey=survey, channel="email")
    AutopilotMember.objects.bulk_create(
        AutopilotMember(company=company, program=program, contact=c, properties={"n": i})
        for i, c in enumerate(people)
    )
    return people


def test_a_manager_sets_up_the_programme_and_a_viewer_only_looks(
    company: Company, personas: dict[str, Persona], viewer: Persona
) -> None:
    survey = active_survey(company)
    page = _url("autopilot", company, survey)
    response = viewer.client.get(page)
    assert response.status_code == 200
    assert b"autopilot-save" not in response.content
    assert viewer.client.post(page, _settings()).status_code == 403
    manager = personas[Role.MANAGER]
    assert b"autopilot-save" in manager.client.get(page).content
    response = manager.client.post(page, _settings(cadence_days="45"))
    assert response.status_code == 400  # not a cadence on offer
    assert not AutopilotProgram.objects.for_company(company).exists()
    response = manager.client.post(page, _settings(channel="sms"))
    assert response.status_code == 302
    assert response["Location"].endswith("?channel=sms")
    program = AutopilotProgram.objects.for_company(company).get()
    assert (program.channel, program.active, program.cadence_days, program.first_delay_days) == (
        "sms",
        True,
        60,
        3,
    )
    response = manager.client.post(page, _settings(channel="sms", active=""))
    program.refresh_from_db()
    assert not program.active
    # The survey editor links here.
    editor = reverse(
        "surveys:edit", kwargs={"company_slug": company.slug, "survey_id": survey.public_id}
    )
    assert page in manager.client.get(editor).content.decode()


def test_add_a_segment_and_remove_a_member(
    company: Company, owner: Persona, django_capture_on_commit_callbacks: Any
) -> None:
    survey = active_survey(company)
    owner.client.post(_url("autopilot", company, survey), _settings())
    gold = Contact.objects.create(company=company, email="g@example.com", properties={"plan": 1})
    Contact.objects.create(company=company, email="f@example.com", properties={"plan": "free"})
    with django_capture_on_commit_callbacks(execute=True):  # the join's worker, woken
        response = owner.client.post(
            _url("autopilot-add", company, survey),
            {
                "channel": "email",
                "audience": "filtered",
                "property_0": "plan",
                "op_0": "eq",
                "value_0": "1",  # typed in: matches the number 1 too
            },
        )
    response = owner.client.get(response["Location"])
    assert "are being added" in response.content.decode()
    joins = response.context["joins"]
    assert [(j.added, j.already, j.no_address) for j in joins] == [(1, 0, 0)]
    (member,) = AutopilotMember.objects.for_company(company)
    assert member.contact == gold
    assert "g@example.com" in response.content.decode()
    response = owner.client.post(
        _url("autopilot-remove", company, survey),
        {"channel": "email", "contact": gold.public_id},
    )
    assert response.status_code == 302
    assert not AutopilotMember.objects.for_company(company).exists()


def test_another_companys_contact_cannot_be_removed_through_our_survey(
    company: Company, other_company: Company, owner: Persona
) -> None:
    survey = active_survey(company)
    theirs = active_survey(other_company)
    autopilot_configure(
        company=other_company,
        survey=theirs,
        channel="email",
        active=True,
        cadence_days=90,
        first_delay_days=0,
    )
    contact = Contact.objects.create(company=other_company, email="x@globex.test")
    autopilot_member_add(company=other_company, survey=theirs, channel="email", contact=contact)
    owner.client.post(_url("autopilot", company, survey), _settings())
    owner.client.post(
        _url("autopilot-remove", company, survey),
        {"channel": "email", "contact": contact.public_id},
    )
    assert AutopilotMember.objects.for_company(other_company).count() == 1


def test_the_members_list_pages_with_a_constant_number_of_queries(
    company: Company, owner: Persona
) -> None:
    survey = active_survey(company)
    owner.client.post(_url("autopilot", company, survey), _settings())
    page = _url("autopilot", company, survey) + "?channel=email"

    def queries(url: str) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            response = owner.client.get(url)
        assert response.status_code == 200
        return len(captured.captured_queries), response.content.decode()

    _members(company, survey, 3, "few")
    few, _body = queries(page)
    people = _members(company, survey, MEMBERS_PAGE_SIZE + 10, "many")
    many, body = queries(page)
    assert few == many
    assert 'rel="next"' in body
    found = re.search(r'href="([^"]+)" rel="next"', body)
    assert found is not None
    second, body = queries(html.unescape(found.group(1)))
    assert second == many
    # The second page: the last members, in join order, and no further page.
    assert str(people[-1].email) in body
    assert 'rel="next"' not in body


def test_an_import_can_add_its_contacts_to_a_recurring_survey(
    company: Company, personas: dict[str, Persona], django_capture_on_commit_callbacks: Any
) -> None:
    survey = active_survey(company)
    program = autopilot_configure(
        company=company,
        survey=survey,
        channel="email",
        active=True,
        cadence_days=90,
        first_delay_days=0,
    )
    before = Contact.objects.create(company=company, email="before@example.com")
    client = personas[Role.MANAGER].client
    content = b"Mail,Who\na@example.com,A\nb@example.com,B\n"
    with django_capture_on_commit_callbacks(execute=True):  # the worker reads the file
        response = client.post(
            reverse("contacts:import", kwargs={"company_slug": company.slug}),
            {"file": SimpleUploadedFile("people.csv", content)},
        )
    # The import's page sends on to the mapping screen once the header is read.
    shown = client.get(response["Location"], follow=True)
    mapping_page = shown.redirect_chain[-1][0] if shown.redirect_chain else response["Location"]
    page = shown.content.decode()
    assert f'value="{program.public_id}"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            mapping_page,
            {"col_0": "email", "col_1": "name", "autopilot": program.public_id},
        )
    assert response.status_code == 302
    assert autopilot_joins_run() == 2
    members = AutopilotMember.objects.for_company(company).select_related("contact")
    assert sorted(str(m.contact.email) for m in members) == ["a@example.com", "b@example.com"]
    assert before.pk not in {m.contact_id for m in members}


def test_the_contact_page_lists_its_recurring_surveys(company: Company, owner: Persona) -> None:
    survey = active_survey(company, name="Yearly check-in")
    autopilot_configure(
        company=company,
        survey=survey,
        channel="email",
        active=True,
        cadence_days=365,
        first_delay_days=0,
    )
    contact = Contact.objects.create(company=company, email="c@example.com")
    page = reverse(
        "contacts:detail", kwargs={"company_slug": company.slug, "contact_id": contact.public_id}
    )
    assert b"contact-recurring" not in owner.client.get(page).content
    autopilot_member_add(company=company, survey=survey, channel="email", contact=contact)
    body = owner.client.get(page).content.decode()
    assert "Yearly check-in" in body
    assert _url("autopilot-remove", company, survey) in body
