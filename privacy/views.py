"""The web app's page for a person's data: export (a JSON download) or erase (admins)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Role
from companies.permissions import company_view
from privacy.forms import PersonForm
from privacy.models import RequestVia
from privacy.selectors import Person, person_found, person_identify, requests_recent
from privacy.services import Actor, person_erase, person_export_recorded


def _person(request: HttpRequest, form: PersonForm) -> Person | None:
    company = request.company  # type: ignore[attr-defined]
    try:
        return person_identify(
            company=company, kind=form.cleaned_data["kind"], value=form.cleaned_data["value"]
        )
    except ValidationError as exc:
        for messages_ in exc.message_dict.values():
            for message in messages_:
                form.add_error("value", message)
        return None


@company_view(Role.ADMIN)
def personal_data(request: HttpRequest) -> HttpResponse:
    """Find a person by email, phone or external id; download their data or erase it."""
    company = request.company  # type: ignore[attr-defined]
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        person = _person(request, form)
        actor = Actor(via=RequestVia.WEB, user=request.user)  # type: ignore[arg-type]
        if person is not None and "erase" in request.POST:
            if not form.cleaned_data["confirm"]:
                form.add_error("confirm", _("Tick the box to confirm the erasure."))
            elif not person_found(company=company, person=person):
                form.add_error("value", _("Nobody with this identifier was found."))
            else:
                person_erase(company=company, person=person, actor=actor)
                messages.success(request, _("The person's data was erased."))
                return redirect("privacy:personal-data", company_slug=company.slug)
        elif person is not None:
            data = person_export_recorded(company=company, person=person, actor=actor)
            response = HttpResponse(
                json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
                content_type="application/json; charset=utf-8",
            )
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            response["Content-Disposition"] = f'attachment; filename="personal-data-{stamp}.json"'
            return response
    return render(
        request,
        "privacy/personal_data.html",
        {"form": form, "requests": requests_recent(company=company)},
    )
