"""Respondent pages speak the respondent's language: the compiled kk and ru catalogs are used.

The survey texts (question, follow-ups, thank-you) come from the survey's own wording; these
tests look at the page chrome that comes from the gettext catalogs in ``locale/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from companies.models import Company
from notifications.models import Suppression
from notifications.unsubscribe import unsubscribe_url
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db

# Sources of the pages and messages respondents see: their msgids must have a Kazakh msgstr.
RESPONDENT_SOURCES = (
    "responses/templates/responses/public/",
    "notifications/templates/notifications/unsubscribe",
    "responses/views_public.py",
    "responses/forms.py",
)


def _answer_page(company: Company, language: str) -> str:
    survey = make_survey(company)
    contact = make_contact(company, email=f"{language}@customer.test")
    _invitation, token = make_invitation(survey, contact, language=language)
    page = Client().get(reverse("answer", kwargs={"token": token}))
    assert page.status_code == 200
    assert page["Content-Language"] == language
    return page.content.decode()


def test_answer_page_chrome_in_kazakh(company: Company) -> None:
    html = _answer_page(company, "kk")
    assert '<html lang="kk">' in html
    assert ">Жіберу</button>" in html
    assert "Мүлдем ықтимал емес" in html
    assert "Себебін айтып беріңіз (міндетті емес)" in html
    assert ">Send</button>" not in html


def test_answer_page_chrome_in_russian(company: Company) -> None:
    html = _answer_page(company, "ru")
    assert ">Отправить</button>" in html
    assert "Совсем маловероятно" in html
    assert ">Send</button>" not in html


def test_unknown_link_page_in_kazakh() -> None:
    url = reverse("answer", kwargs={"token": "no-such-token"})
    page = Client().get(url + "?lang=kk")
    assert page.status_code == 404
    assert "Бұл сауалнама табылмады" in page.content.decode()


def test_unsubscribe_confirmation_and_done_pages_in_kazakh(company: Company) -> None:
    url = urlsplit(
        unsubscribe_url(company=company, channel="email", address="ann@x.test", language="kk")
    ).path
    client = Client()
    confirm = client.get(url).content.decode()
    assert '<html lang="kk">' in confirm
    assert "Жазылымнан бас тарту</button>" in confirm
    assert "үшін бұл компаниядан келетін сауалнамаларды тоқтату керек пе?" in confirm
    done = client.post(url).content.decode()
    assert "бұдан былай бұл компаниядан сауалнама алмайды." in done
    assert Suppression.objects.for_company(company).filter(address="ann@x.test").exists()


def _entries(po_path: Path) -> list[tuple[str, str, str]]:
    """(references, msgid, msgstr) of each singular entry; enough for this check."""
    entries: list[tuple[str, str, str]] = []
    for block in po_path.read_text(encoding="utf-8").split("\n\n"):
        refs: list[str] = []
        msgid: list[str] = []
        msgstr: list[str] = []
        current: list[str] | None = None
        for line in block.splitlines():
            if line.startswith("#:"):
                refs.append(line[2:])
            elif line.startswith("msgid "):
                current = msgid
                msgid.append(line[6:].strip('"'))
            elif line.startswith("msgstr "):
                current = msgstr
                msgstr.append(line[7:].strip('"'))
            elif line.startswith('"') and current is not None:
                current.append(line.strip('"'))
            elif line.startswith(("msgid_plural", "msgstr[")):
                current = None
        if msgid:
            entries.append((" ".join(refs), "".join(msgid), "".join(msgstr)))
    return entries


def test_every_respondent_string_has_a_kazakh_translation() -> None:
    po = Path(settings.BASE_DIR) / "locale" / "kk" / "LC_MESSAGES" / "django.po"
    respondent = [
        (msgid, msgstr)
        for refs, msgid, msgstr in _entries(po)
        if msgid and any(source in refs for source in RESPONDENT_SOURCES)
    ]
    assert len(respondent) >= 20
    untranslated = [msgid for msgid, msgstr in respondent if not msgstr]
    assert untranslated == [], "run makemessages -l kk and translate these"


@pytest.mark.parametrize("language", ["en", "ru", "kk"])
def test_the_scale_ends_read_the_same_in_the_email_and_on_the_page(
    company: Company, language: str
) -> None:
    # Russian said "совершенно маловероятно … очень вероятно" in the email and "Совсем
    # маловероятно … Весьма вероятно" on the answer page.
    import re

    from surveys.defaults import DEFAULT_TEXTS

    html = _answer_page(company, language)
    ends = re.search(r'<div class="r-ends"[^>]*><span>(.*?)</span><span>(.*?)</span>', html)
    assert ends is not None
    texts = DEFAULT_TEXTS["nps"][language]
    email = [re.sub(r"^\d+\s*[=—-]\s*", "", texts[k]) for k in ("scale_low", "scale_high")]
    assert [e.casefold() for e in ends.groups()] == [e.casefold() for e in email]


def test_a_persons_name_is_not_a_things_name(personas, company: Company) -> None:
    # "Name" of a contact read "Название" (the name of a thing) in Russian and "Атауы" in Kazakh.
    contact = make_contact(company, email="ann@customer.test")
    contact.name = "Анна Смирнова"
    contact.save(update_fields=["name"])
    client = personas["viewer"].client
    url = reverse(
        "contacts:detail", kwargs={"company_slug": company.slug, "contact_id": contact.public_id}
    )
    for language, word in (("ru", "<dt>Имя</dt>"), ("kk", "<dt>Аты</dt>")):
        client.cookies["django_language"] = language
        page = client.get(url)
        assert page.status_code == 200
        assert word in page.content.decode()
