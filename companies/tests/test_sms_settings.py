"""SMS and WhatsApp settings (/c/<slug>/settings/sms/) and company_sms_update."""

from __future__ import annotations

from datetime import time

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from companies.models import Company, Role
from companies.services import company_sms_update
from conftest import KeyPersona, Persona

pytestmark = pytest.mark.django_db

SERVICE = "MG" + "0123456789abcdef" * 2


def sms_url(company: Company) -> str:
    return reverse("companies:sms-settings", kwargs={"company_slug": company.slug})


def data(**overrides: str) -> dict[str, str]:
    values = {
        "sms_sender_kind": "messaging_service",
        "sms_sender": SERVICE,
        "sms_rate_per_second": "25",
        "whatsapp_sender": "+1 415 523 8886",
        "quiet_hours_start": "08:30",
        "quiet_hours_end": "21:00",
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_admins_set_the_sender_rate_and_quiet_hours(
    personas: dict[str, Persona], company: Company, role: str
) -> None:
    client = personas[role].client
    page = client.get(sms_url(company))
    assert page.status_code == 200
    assert 'name="sms_sender"' in page.content.decode()
    response = client.post(sms_url(company), data(), follow=True)
    assert "SMS settings saved." in response.content.decode()
    company.refresh_from_db()
    assert company.sms_sender == SERVICE
    assert company.sms_rate == 25.0
    assert company.whatsapp_sender == "+14155238886"
    assert (company.quiet_hours_start, company.quiet_hours_end) == (time(8, 30), time(21, 0))


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.MANAGER])
def test_members_below_admin_can_neither_see_nor_change_it(
    personas: dict[str, Persona], company: Company, role: str
) -> None:
    client = personas[role].client
    assert client.get(sms_url(company)).status_code == 403
    assert client.post(sms_url(company), data()).status_code == 403
    company.refresh_from_db()
    assert company.sms_sender == ""


def test_outsiders_and_anonymous_visitors_are_kept_out(
    outsider: Persona, company: Company, client: Client
) -> None:
    assert outsider.client.get(sms_url(company)).status_code == 404
    assert outsider.client.post(sms_url(company), data()).status_code == 404
    anonymous = client.post(sms_url(company), data())
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous["Location"]
    company.refresh_from_db()
    assert company.sms_sender == ""


def test_the_default_rate_follows_the_sender_kind(company: Company) -> None:
    for kind, rate in [("long_code", 1.0), ("toll_free", 3.0), ("short_code", 100.0)]:
        company.sms_sender_kind = kind
        assert company.sms_rate == rate


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"sms_sender_kind": "messaging_service", "sms_sender": "+14155550100"}, "sms_sender"),
        ({"sms_sender_kind": "long_code", "sms_sender": "not a number"}, "sms_sender"),
        ({"sms_sender_kind": "short_code", "sms_sender": "12"}, "sms_sender"),
        ({"whatsapp_sender": "whatsapp"}, "whatsapp_sender"),
        ({"quiet_hours_start": time(9), "quiet_hours_end": time(9)}, "quiet_hours_end"),
    ],
)
def test_invalid_settings_are_refused(
    company: Company, fields: dict[str, object], error_field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        company_sms_update(company=company, **fields)
    assert error_field in info.value.message_dict
    company.refresh_from_db()
    assert company.sms_sender == ""
    assert company.whatsapp_sender == ""


def test_a_sender_belongs_to_one_company(company: Company, other_company: Company) -> None:
    """Replies are matched to the company by the number they were sent to."""
    company_sms_update(company=company, sms_sender_kind="long_code", sms_sender="+14155550100")
    assert company.sms_sender == "+14155550100"
    with pytest.raises(ValidationError) as info:
        company_sms_update(
            company=other_company, sms_sender_kind="long_code", sms_sender="+1 415 555 0100"
        )
    assert "sms_sender" in info.value.message_dict


def test_whatsapp_templates_per_language(personas: dict[str, Persona], company: Company) -> None:
    client = personas[Role.ADMIN].client
    sid = "HX" + "ab" * 16
    posted = data(whatsapp_template_en=sid, whatsapp_template_ru="", whatsapp_template_kk="")
    client.post(sms_url(company), posted)
    company.refresh_from_db()
    assert company.whatsapp_templates == {"en": sid}
    bad = client.post(sms_url(company), data(whatsapp_template_ru="HX-nope"))
    assert "content SID starts with HX" in bad.content.decode()
    company.refresh_from_db()
    assert company.whatsapp_templates == {"en": sid}


def test_whatsapp_template_variables_are_mapped_and_checked(
    personas: dict[str, Persona], company: Company
) -> None:
    client = personas[Role.ADMIN].client
    page = client.get(sms_url(company)).content.decode()
    assert "1=name, 2=company, 3=link" in page  # the default, shown
    client.post(sms_url(company), data(whatsapp_variables="2=link; 1=first_name"))
    company.refresh_from_db()
    assert company.whatsapp_variables == {"2": "link", "1": "first_name"}
    for bad, message in (
        ("1=name, 2=phone", "Unknown value phone"),
        ("name", "number=value pairs"),
        ("1=name, 2=company", "must carry the answer link"),
    ):
        refused = client.post(sms_url(company), data(whatsapp_variables=bad)).content.decode()
        assert message in refused
    company.refresh_from_db()
    assert company.whatsapp_variables == {"2": "link", "1": "first_name"}


# --- Own Twilio account -----------------------------------------------------------------------

ACCOUNT = "AC" + "12" * 16
TOKEN = "f00dcafe-own-secret-auth-token"


def test_own_twilio_token_is_encrypted_and_never_shown_logged_or_in_admin(
    personas: dict[str, Persona],
    company: Company,
    caplog: pytest.LogCaptureFixture,
    admin_client: Client,
    api_owner: KeyPersona,
) -> None:
    from companies.credentials import secret_decrypt

    caplog.set_level("DEBUG")
    client = personas[Role.OWNER].client
    saved = client.post(
        sms_url(company),
        {"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "save_account": "1"},
        follow=True,
    )
    page = saved.content.decode()
    assert "Twilio account saved." in page
    assert TOKEN not in page
    assert "never shown again" in page
    company.refresh_from_db()
    assert company.twilio_account_sid == ACCOUNT
    assert TOKEN not in company.twilio_auth_token_encrypted
    assert secret_decrypt(company.twilio_auth_token_encrypted) == TOKEN
    # Saving the SID again without a token keeps the saved token.
    client.post(sms_url(company), {"twilio_account_sid": ACCOUNT, "save_account": "1"})
    company.refresh_from_db()
    assert secret_decrypt(company.twilio_auth_token_encrypted) == TOKEN
    admin_page = admin_client.get(f"/admin/companies/company/{company.pk}/change/")
    assert admin_page.status_code == 200
    assert TOKEN not in admin_page.content.decode()
    assert company.twilio_auth_token_encrypted not in admin_page.content.decode()
    assert TOKEN not in caplog.text
    api = Client().get(
        "/api/v1/company/", HTTP_AUTHORIZATION=api_owner.headers["HTTP_AUTHORIZATION"]
    )
    assert api.status_code == 200
    assert TOKEN not in api.content.decode()
    assert "twilio" not in api.content.decode()


def test_own_twilio_account_validation_and_going_back(company: Company) -> None:
    from companies.services import company_twilio_account_set

    with pytest.raises(ValidationError) as info:
        company_twilio_account_set(company=company, account_sid="AC123", auth_token=TOKEN)
    assert "twilio_account_sid" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        company_twilio_account_set(company=company, account_sid=ACCOUNT, auth_token="")
    assert "twilio_auth_token" in info.value.message_dict
    company_twilio_account_set(company=company, account_sid=ACCOUNT, auth_token=TOKEN)
    company_twilio_account_set(company=company, account_sid="", auth_token="")
    company.refresh_from_db()
    assert (company.twilio_account_sid, company.twilio_auth_token_encrypted) == ("", "")
