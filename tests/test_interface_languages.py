"""The team interface speaks English, Russian and Kazakh: the switch offers all three, a
choice is remembered on the account, dates and numbers follow the language, and plural forms
follow each language's rules."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import formats, translation

from companies.models import Company
from conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_the_language_switch_offers_kazakh_and_a_kazakh_choice_is_kept(
    personas: dict[str, Any], company: Company
) -> None:
    owner = personas["owner"]
    overview = reverse("companies:overview", kwargs={"company_slug": company.slug})
    page = owner.client.get(overview).content.decode()
    for code in ("en", "ru", "kk"):
        assert f'name="language" value="{code}"' in page
    # Each language is named in itself.
    assert 'title="Қазақ тілі"' in page
    assert 'title="Русский"' in page

    response = owner.client.post(reverse("set_language"), {"language": "kk", "next": overview})
    assert response.cookies["django_language"].value == "kk"
    owner.user.refresh_from_db()
    assert owner.user.language == "kk"
    page = owner.client.get(overview).content.decode()
    assert '<html lang="kk">' in page
    assert 'value="kk" lang="kk" title="Қазақ тілі" aria-pressed="true"' in page


def test_login_switches_to_kazakh_when_the_account_speaks_it(client: Client) -> None:
    user = make_user("kk@example.test")
    user.language = "kk"
    user.save()
    credentials = {"login": "kk@example.test", "password": PASSWORD}
    response = client.post(reverse("account_login"), credentials)
    assert response.cookies["django_language"].value == "kk"
    page = client.get(reverse("account_change_password"))
    assert '<html lang="kk">' in page.content.decode()


def test_kazakh_dates_and_numbers_are_written_the_kazakh_way() -> None:
    when = datetime.datetime(2026, 12, 7, 14, 5, tzinfo=datetime.UTC)
    with translation.override("kk"):
        # Django has no Kazakh formats: without ours this was "Жел. 7, 2026, 2:05 Т.Қ.", 1234.5.
        assert formats.date_format(when, "DATE_FORMAT") == "07.12.2026"
        assert formats.date_format(when, "SHORT_DATETIME_FORMAT") == "07.12.2026 14:05"
        assert formats.date_format(when, "DATETIME_FORMAT") == "07.12.2026 14:05"
        assert formats.number_format(1234.5, 1, use_l10n=True, force_grouping=True) == (
            "1\xa0234,5"
        )


@pytest.mark.parametrize(
    ("n", "russian"),
    [
        (1, "1 ответ"),
        (2, "2 ответа"),
        (4, "4 ответа"),
        (5, "5 ответов"),
        (11, "11 ответов"),
        (12, "12 ответов"),
        (14, "14 ответов"),
        (21, "21 ответ"),
        (22, "22 ответа"),
        (25, "25 ответов"),
        (111, "111 ответов"),
        (0, "0 ответов"),
    ],
)
def test_russian_plurals_have_three_forms_kazakh_two(n: int, russian: str) -> None:
    with translation.override("ru"):
        text = translation.ngettext("%(n)s answer", "%(n)s answers", n) % {"n": n}
    assert text == russian
    with translation.override("kk"):
        kazakh = translation.ngettext("%(n)s answer", "%(n)s answers", n) % {"n": n}
    assert kazakh == f"{n} жауап"  # Kazakh nouns after a numeral stay singular


def test_sign_up_and_log_in_errors_and_notices_are_kazakh(client: Client) -> None:
    # allauth and Django's password checks have no Kazakh of their own: these were English.
    from companies.tests.test_accounts import signup_data

    client.cookies["django_language"] = "kk"
    weak = signup_data(password1="12345", password2="12345")
    page = client.post(reverse("account_signup"), weak).content.decode()
    assert "Бұл құпиясөз тым қысқа: кемінде 8 таңба болуы керек." in page
    assert "Бұл құпиясөз тек сандардан тұрады." in page
    make_user("kk.user@example.test")
    wrong = {"login": "kk.user@example.test", "password": "not-the-password-1"}
    page = client.post(reverse("account_login"), wrong).content.decode()
    assert "Электрондық пошта мекенжайы немесе құпиясөз қате." in page
    right = {"login": "kk.user@example.test", "password": PASSWORD}
    page = client.post(reverse("account_login"), right, follow=True).content.decode()
    assert "Сіз kk.user@example.test ретінде жүйеге кірдіңіз." in page
