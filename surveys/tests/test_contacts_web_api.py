"""Contact pages and the contacts API: roles, tenancy, bad input, what the pages show."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from companies.models import Company, Role
from conftest import KeyPersona, Persona
from notifications.models import Suppression, SuppressionReason
from surveys.models import Contact, ContactImport, ImportStatus, Invitation, Survey
from surveys.services.contacts import contact_upsert
from surveys.tokens import new_nonce, token_for, token_hash

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def _api(persona: KeyPersona) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {persona.key}")


def _url(name: str, company: Company, **kwargs: str) -> str:
    return reverse(f"contacts:{name}", kwargs={"company_slug": company.slug, **kwargs})


# --- Web ---------------------------------------------------------------------------------------


def test_list_search_and_property_filter(viewer: Persona, company: Company) -> None:
    contact_upsert(company=company, email="alice@example.com", name="Alice", properties={"p": "a"})
    contact_upsert(company=company, email="bob@example.com", name="Bob", properties={"p": "b"})
    page = viewer.client.get(_url("list", company), {"q": "ali"}).content.decode()
    assert "alice@example.com" in page
    assert "bob@example.com" not in page
    page = viewer.client.get(_url("list", company), {"prop": "p=b"}).content.decode()
    assert "bob@example.com" in page
    assert "alice@example.com" not in page


def test_list_pages_with_a_cursor_and_constant_queries(
    viewer: Persona, company: Company, django_assert_max_num_queries: Any
) -> None:
    Contact.objects.bulk_create(
        Contact(company=company, email=f"c{i:03}@example.com") for i in range(120)
    )
    response = viewer.client.get(_url("list", company))
    next_url = response.context["next_url"]
    assert len(response.context["contacts"]) == 50
    seen = {c.pk for c in response.context["contacts"]}
    with django_assert_max_num_queries(12):
        response = viewer.client.get(_url("list", company) + next_url)
    page2 = {c.pk for c in response.context["contacts"]}
    assert len(page2) == 50
    assert not seen & page2
    response = viewer.client.get(_url("list", company) + response.context["next_url"])
    assert len(response.context["contacts"]) == 20
    assert response.context["next_url"] is None


def test_detail_shows_fields_invitations_and_suppression(viewer: Persona, company: Company) -> None:
    contact, _ = contact_upsert(
        company=company, email="sup@example.com", name="Sue", properties={"tier": "gold"}
    )
    survey = Survey.objects.create(company=company, name="Quarterly NPS")
    nonce = new_nonce()
    Invitation.objects.create(
        company=company,
        survey=survey,
        contact=contact,
        token_nonce=nonce,
        token_hash=token_hash(token_for(nonce)),
    )
    page = viewer.client.get(_url("detail", company, contact_id=contact.public_id))
    text = page.content.decode()
    assert "Quarterly NPS" in text
    assert "gold" in text
    assert "Not suppressed" in text
    Suppression.objects.create(
        company=company,
        channel="email",
        address="sup@example.com",
        reason=SuppressionReason.UNSUBSCRIBED,
    )
    text = viewer.client.get(_url("detail", company, contact_id=contact.public_id)).content.decode()
    assert "is suppressed on email" in text


def test_viewer_cannot_write_and_outsider_sees_nothing(
    personas: dict[str, Persona], outsider: Persona, company: Company
) -> None:
    contact, _ = contact_upsert(company=company, email="x@example.com")
    viewer = personas[Role.VIEWER]
    assert (
        viewer.client.post(_url("create", company), {"email": "n@example.com"}).status_code == 403
    )
    delete_url = _url("delete", company, contact_id=contact.public_id)
    assert viewer.client.post(delete_url).status_code == 403
    assert (
        outsider.client.get(_url("detail", company, contact_id=contact.public_id)).status_code
        == 404
    )
    assert outsider.client.post(delete_url).status_code == 404
    assert Contact.objects.for_company(company).count() == 1
    # A contact id of another company is a 404 inside one's own company too.
    theirs, _ = contact_upsert(company=outsider.company, email="t@example.com")
    manager = personas[Role.MANAGER]
    assert (
        manager.client.get(_url("detail", company, contact_id=theirs.public_id)).status_code == 404
    )


def test_create_edit_delete(personas: dict[str, Persona], company: Company) -> None:
    client = personas[Role.MANAGER].client
    response = client.post(_url("create", company), {"email": "a@example.com", "properties": "[1]"})
    assert response.status_code == 400
    assert "properties" in response.context["form"].errors
    response = client.post(_url("create", company), {"email": "bad", "language": "ru"})
    assert response.status_code == 400
    assert "email" in response.context["form"].errors
    assert Contact.objects.for_company(company).count() == 0
    response = client.post(
        _url("create", company),
        {"email": "New@Example.com", "name": "Nina", "properties": '{"plan": "pro", "n": 2}'},
    )
    assert response.status_code == 302
    contact = Contact.objects.for_company(company).get()
    assert contact.email == "new@example.com"
    assert contact.properties == {"plan": "pro", "n": 2}
    # A second contact with the same email is refused, not merged.
    response = client.post(_url("create", company), {"email": "new@example.com", "name": "X"})
    assert response.status_code == 400
    response = client.post(
        _url("edit", company, contact_id=contact.public_id),
        {"email": "new@example.com", "name": "Nina B", "properties": '{"n": 3}'},
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.name == "Nina B"
    assert contact.properties == {"n": 3}  # "plan" was removed in the form
    # As people type them: name=value lines, or separated by semicolons.
    response = client.post(
        _url("edit", company, contact_id=contact.public_id),
        {"email": "new@example.com", "properties": "plan = team\nregion=south; seats=4\n"},
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.properties == {"plan": "team", "region": "south", "seats": "4"}
    response = client.post(
        _url("edit", company, contact_id=contact.public_id),
        {"email": "new@example.com", "properties": "plan=pro\njust words"},
    )
    assert response.status_code == 400
    assert "“just words” is not name=value" in str(response.context["form"].errors)
    response = client.post(_url("delete", company, contact_id=contact.public_id))
    assert response.status_code == 302
    assert Contact.objects.for_company(company).count() == 0


def test_import_upload_mapping_result_and_error_download(
    personas: dict[str, Persona], company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    client = personas[Role.MANAGER].client
    content = b"Mail,Who,Tier\nok@example.com,Ok,gold\nbroken,Bad,silver\n"
    response = client.post(_url("import", company), {"file": SimpleUploadedFile("l.csv", content)})
    assert response.status_code == 302
    contact_import = ContactImport.objects.for_company(company).get()
    assert response["Location"] == _url(
        "import_mapping", company, import_id=contact_import.public_id
    )
    page = client.get(response["Location"]).content.decode()
    for header in ("Mail", "Who", "Tier"):
        assert header in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            response["Location"],
            {"col_0": "email", "col_1": "name", "col_2": "property:Tier"},
        )
    assert response.status_code == 302
    result = client.get(response["Location"])
    assert result.context["import"].status == ImportStatus.DONE
    assert "Enter a valid email" in result.content.decode()
    download = client.get(_url("import_errors", company, import_id=contact_import.public_id))
    body = b"".join(download.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert body.splitlines()[0] == "Mail,Who,Tier,error_line,error"
    assert body.splitlines()[1].startswith("broken,Bad,silver,3,Mail:")
    contact = Contact.objects.for_company(company).get()
    assert contact.name == "Ok"
    assert contact.properties == {"Tier": "gold"}


def test_import_bad_file_and_bad_mapping(personas: dict[str, Persona], company: Company) -> None:
    client = personas[Role.MANAGER].client
    response = client.post(_url("import", company), {"file": SimpleUploadedFile("x.txt", b"")})
    assert response.status_code == 400
    response = client.post(
        _url("import", company), {"file": SimpleUploadedFile("x.csv", b"a,b\n1,2\n")}
    )
    contact_import = ContactImport.objects.for_company(company).get()
    response = client.post(response["Location"], {"col_0": "name", "col_1": "ignore"})
    assert response.status_code == 400
    assert "email, phone or external_id" in response.content.decode()
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.PENDING


# --- API ---------------------------------------------------------------------------------------


def test_api_upsert_list_filter_get_patch_delete(api_owner: KeyPersona, company: Company) -> None:
    client = _api(api_owner)
    response = client.post(
        "/api/v1/contacts/",
        {"email": "A@Example.com", "external_id": "a1", "properties": {"plan": "pro"}},
        content_type="application/json",
    )
    assert response.status_code == 201
    contact_id = response.json()["id"]
    response = client.post(
        "/api/v1/contacts/",
        {"external_id": "a1", "name": "Ann", "properties": {"seats": 3}},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["properties"] == {"plan": "pro", "seats": 3}
    contact_upsert(company=company, email="b@example.com", properties={"plan": "free"})
    results = client.get("/api/v1/contacts/", {"property": "plan=pro"}).json()["results"]
    assert [r["id"] for r in results] == [contact_id]
    assert len(client.get("/api/v1/contacts/", {"email": "B@example.com"}).json()["results"]) == 1
    assert client.get("/api/v1/contacts/", {"property": "nokey"}).status_code == 400
    response = client.patch(
        f"/api/v1/contacts/{contact_id}/",
        {"phone": "not a phone"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "phone" in response.json()["error"]["fields"]
    response = client.patch(
        f"/api/v1/contacts/{contact_id}/", {"language": "kk"}, content_type="application/json"
    )
    assert response.json()["language"] == "kk"
    assert client.delete(f"/api/v1/contacts/{contact_id}/").status_code == 204
    assert client.get(f"/api/v1/contacts/{contact_id}/").status_code == 404


def test_api_bad_input_is_a_400_with_fields(api_owner: KeyPersona, company: Company) -> None:
    client = _api(api_owner)
    for payload, field in [
        ({"email": "nope"}, "email"),
        ({"email": "a@example.com", "language": "fr"}, "language"),
        ({"email": "a@example.com", "properties": {"x": [1]}}, "properties"),
        ({"name": "No address"}, "email"),
    ]:
        response = client.post("/api/v1/contacts/", payload, content_type="application/json")
        assert response.status_code == 400, payload
        assert field in response.json()["error"]["fields"], payload
    assert Contact.objects.for_company(company).count() == 0


def test_api_read_only_key_and_outsider(
    api_viewer: KeyPersona, api_outsider: KeyPersona, company: Company
) -> None:
    contact, _ = contact_upsert(company=company, email="k@example.com")
    viewer = _api(api_viewer)
    assert viewer.get(f"/api/v1/contacts/{contact.public_id}/").status_code == 200
    response = viewer.post(
        "/api/v1/contacts/", {"email": "z@example.com"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert viewer.delete(f"/api/v1/contacts/{contact.public_id}/").status_code == 403
    upload = SimpleUploadedFile("a.csv", b"email\nq@example.com\n")
    assert viewer.post("/api/v1/contact-imports/", {"file": upload}).status_code == 403
    outsider = _api(api_outsider)
    assert outsider.get(f"/api/v1/contacts/{contact.public_id}/").status_code == 404
    assert outsider.delete(f"/api/v1/contacts/{contact.public_id}/").status_code == 404
    assert outsider.get("/api/v1/contacts/").json()["results"] == []
    assert Contact.objects.for_company(company).count() == 1


def test_api_import_upload_status_and_errors_csv(
    api_owner: KeyPersona,
    api_outsider: KeyPersona,
    company: Company,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = _api(api_owner)
    content = b"email,Plan\nok@example.com,pro\nbad-email,free\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/contact-imports/",
            {"file": io.BytesIO(content), "mapping": '{"Plan": "property:plan"}'},
        )
    assert response.status_code == 400  # a BytesIO has no name: not a file upload
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/contact-imports/",
            {"file": SimpleUploadedFile("c.csv", content), "mapping": '{"Plan": "property:plan"}'},
        )
    assert response.status_code == 202
    import_id = response.json()["id"]
    body = client.get(f"/api/v1/contact-imports/{import_id}/").json()
    assert body["status"] == "done"
    assert (body["created_count"], body["invalid_count"]) == (1, 1)
    assert body["errors"] == [{"line": 3, "column": "email", "reason": body["errors"][0]["reason"]}]
    errors = client.get(body["errors_url"])
    assert errors.status_code == 200
    csv_text = b"".join(errors.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert "bad-email,free,3," in csv_text
    assert Contact.objects.for_company(company).get().properties == {"plan": "pro"}
    outsider = _api(api_outsider)
    assert outsider.get(f"/api/v1/contact-imports/{import_id}/").status_code == 404
    assert outsider.get(f"/api/v1/contact-imports/{import_id}/errors.csv").status_code == 404
    # A bad mapping: 400 and nothing left behind.
    response = client.post(
        "/api/v1/contact-imports/",
        {"file": SimpleUploadedFile("d.csv", content), "mapping": '{"Plan": "birthday"}'},
    )
    assert response.status_code == 400
    assert "mapping" in response.json()["error"]["fields"]
    assert ContactImport.objects.for_company(company).count() == 1
