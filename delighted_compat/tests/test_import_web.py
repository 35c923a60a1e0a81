"""The Delighted import pages: upload several exports, check kinds and columns, import in the
worker (inline here), see the result and download the rejected rows; roles and tenancy."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from companies.models import Company
from conftest import Persona
from delighted_compat.models import DelightedImport, DelightedImportStatus, ExportKind
from notifications.models import Suppression
from responses.models import Response
from surveys.models import Contact, Survey

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"


def _upload(*names: str) -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile(name, (DATA / name).read_bytes(), content_type="text/csv")
        for name in names
    ]


def _url(company: Company, name: str = "upload", **kwargs: str) -> str:
    return reverse(f"delighted_import:{name}", kwargs={"company_slug": company.slug, **kwargs})


def _post_review(
    client: Any, url: str, on_commit: Any, overrides: dict[str, str] | None = None
) -> Any:
    """Submit the review page as shown (every select at its current value) plus overrides;
    what waits for the commit (waking the import task, inline in tests) runs after it."""
    page = client.get(url)
    form = page.context["forms"]
    data: dict[str, str] = {}
    for file_form in form:
        for bound in file_form:
            value = bound.value()
            data[bound.html_name] = "" if value is None else str(value)
    data.update(overrides or {})
    with on_commit(execute=True):
        return client.post(url, data)


def test_upload_review_and_import_from_the_web(
    personas: dict[str, Persona], company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    client = personas["manager"].client
    page = client.get(reverse("contacts:import", kwargs={"company_slug": company.slug}))
    assert _url(company).encode() in page.content  # reachable from the contact import

    response = client.post(
        _url(company),
        {
            "exports": _upload(
                "delighted-responses.csv", "delighted-people.csv", "delighted-bounces.csv"
            )
        },
    )
    assert response.status_code == 302
    batch_url = response["Location"]
    files = DelightedImport.objects.for_company(company).order_by("pk")
    assert [f.kind for f in files] == [ExportKind.RESPONSES, ExportKind.PEOPLE, ExportKind.BOUNCES]
    assert not Response.objects.for_company(company).exists()  # nothing before the review

    review = client.get(batch_url)
    assert review.status_code == 200
    text = review.content.decode()
    # "Plan" and "Country" are not Delighted's: shown as not recognised (kept as properties).
    assert text.count("data-unrecognised") == 2
    assert "2 columns were not recognised" in text
    assert '<code class="sample">Айгерим Садыкова</code>' in text  # the first values shown

    responses_file = files[0]
    plan = f"{responses_file.public_id}-col_{responses_file.headers.index('Country')}"
    done = _post_review(client, batch_url, django_capture_on_commit_callbacks, {plan: "ignore"})
    assert done.status_code == 302
    assert set(DelightedImport.objects.for_company(company).values_list("status", flat=True)) == {
        DelightedImportStatus.DONE
    }
    assert Response.objects.for_company(company).count() == 15
    answer = Response.objects.for_company(company).get(delighted__delighted_id="1001")
    assert answer.contact_properties == {"Plan": "Pro"}  # Country ignored as asked
    assert Survey.objects.for_company(company).filter(name="Delighted").count() == 1
    assert Contact.objects.for_company(company).filter(email="kate@example.com").exists()
    assert Suppression.objects.for_company(company).filter(reason="bounced").count() == 1

    result = client.get(batch_url)
    assert b'data-testid="delighted-result"' in result.content
    assert "Score" in result.content.decode()  # the invalid rows are listed
    report = client.get(_url(company, "errors", delighted_import_id=responses_file.public_id))
    assert report.status_code == 200
    assert report["Content-Disposition"].startswith("attachment")
    body = b"".join(report.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1][2].startswith("'=HYPERLINK")  # formula-escaped

    # The same files again: nothing changes.
    again = client.post(
        _url(company),
        {
            "exports": _upload(
                "delighted-responses.csv", "delighted-people.csv", "delighted-bounces.csv"
            )
        },
    )
    assert (
        _post_review(client, again["Location"], django_capture_on_commit_callbacks).status_code
        == 302
    )
    assert Response.objects.for_company(company).count() == 15
    assert Survey.objects.for_company(company).count() == 1  # the same survey again


def test_a_file_of_unknown_kind_is_asked_about(
    personas: dict[str, Persona], company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    client = personas["admin"].client
    mystery = SimpleUploadedFile("export.csv", "Адрес,Когда\nann@x.test,2026-01-01\n".encode())
    response = client.post(_url(company), {"exports": [mystery]})
    batch_url = response["Location"]
    imp = DelightedImport.objects.for_company(company).get()
    assert imp.kind == ""
    # Not said what it is: refused, nothing imported.
    refused = _post_review(client, batch_url, django_capture_on_commit_callbacks)
    assert refused.status_code == 400
    assert "Say what this file holds" in refused.content.decode()
    # Said "unsubscribes", the columns shown for that kind; the address column mapped to email.
    kind = f"{imp.public_id}-kind"
    assert (
        _post_review(
            client, batch_url, django_capture_on_commit_callbacks, {kind: "unsubscribes"}
        ).status_code
        == 302
    )
    imp.refresh_from_db()
    assert (imp.kind, imp.status) == (ExportKind.UNSUBSCRIBES, DelightedImportStatus.PENDING)
    no_email = _post_review(client, batch_url, django_capture_on_commit_callbacks)
    assert no_email.status_code == 400
    assert "no column for email / phone" in no_email.content.decode()
    col = f"{imp.public_id}-col_0"
    when = f"{imp.public_id}-col_1"
    ok = _post_review(
        client,
        batch_url,
        django_capture_on_commit_callbacks,
        {col: "email", when: "unsubscribed_at"},
    )
    assert ok.status_code == 302
    assert Suppression.objects.for_company(company).get().address == "ann@x.test"


def test_an_unreadable_upload_keeps_nothing(personas: dict[str, Persona], company: Company) -> None:
    good = _upload("delighted-people.csv")[0]
    empty = SimpleUploadedFile("empty.csv", b"")
    response = personas["owner"].client.post(_url(company), {"exports": [good, empty]})
    assert response.status_code == 400
    assert "empty.csv" in response.content.decode()
    assert not DelightedImport.objects.for_company(company).exists()


@pytest.mark.parametrize("role", ["agent", "viewer"])
def test_lesser_roles_are_refused(
    personas: dict[str, Persona], company: Company, role: str
) -> None:
    client = personas[role].client
    assert client.get(_url(company)).status_code == 403
    response = client.post(_url(company), {"exports": _upload("delighted-people.csv")})
    assert response.status_code == 403
    assert not DelightedImport.objects.for_company(company).exists()


def test_outsiders_get_404(
    personas: dict[str, Persona], company: Company, outsider: Persona
) -> None:
    manager = personas["manager"].client
    batch_url = manager.post(_url(company), {"exports": _upload("delighted-people.csv")})[
        "Location"
    ]
    imp = DelightedImport.objects.for_company(company).get()
    theirs = outsider.client
    assert theirs.get(_url(company)).status_code == 404
    assert theirs.get(batch_url).status_code == 404
    assert theirs.post(batch_url, {}).status_code == 404
    assert theirs.get(_url(company, "errors", delighted_import_id=imp.public_id)).status_code == 404
    # Their own company's URL with our ids: not found either.
    mine = _url(outsider.company, "batch", batch_id=imp.batch)
    assert theirs.get(mine).status_code == 404
    assert (
        theirs.get(_url(outsider.company, "errors", delighted_import_id=imp.public_id)).status_code
        == 404
    )
    imp.refresh_from_db()
    assert imp.status == DelightedImportStatus.PENDING
