"""The team pages in a real browser, in English, Russian and Kazakh, at a desktop and at a phone
width: every link of the main navigation is visible, no page scrolls sideways, no SVG number is
written with a decimal comma, and no Russian or Kazakh page shows a message in English."""

from __future__ import annotations

import pprint
import re
from pathlib import Path

import polib  # type: ignore[import-untyped]  # no stubs installed (types-polib)
import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Page

from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The links that are not fully inside the navigation's visible box or the window.
CLIPPED_LINKS = """() => {
  const nav = document.querySelector('.mainnav');
  const box = nav.getBoundingClientRect();
  return [...nav.querySelectorAll('a')].filter(a => {
    const r = a.getBoundingClientRect();
    return r.width === 0 || r.left < box.left - 0.5 || r.right > box.right + 0.5
      || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5
      || r.left < 0 || r.right > window.innerWidth;
  }).map(a => a.textContent.trim());
}"""
SIDEWAYS = "() => document.documentElement.scrollWidth - window.innerWidth"
LANGUAGES = ("en", "ru", "kk")
# What sticks out on the right: the innermost elements past the window's edge.
STICKING_OUT = r"""() => {
  const past = el => el.getBoundingClientRect().right > window.innerWidth + 0.5;
  const clips = a => a !== document.body && getComputedStyle(a).overflowX !== 'visible';
  const inClipped = el => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (clips(a)) return true;
    }
    return false;
  };
  const out = new Set([...document.querySelectorAll('body *')].filter(
    el => past(el) && !inClipped(el)));
  return [...out].filter(el => ![...el.children].some(c => out.has(c))).slice(0, 3)
    .map(el => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} `
      + `"${el.textContent.trim().slice(0, 30)}" ${Math.round(el.getBoundingClientRect().right)}`);
}"""

# SVG attributes that hold one number each, and those that hold lists of them.
SVG_NUMBERS = r"""() => {
  const single = ['x', 'y', 'x1', 'x2', 'y1', 'y2', 'cx', 'cy', 'r', 'rx', 'ry', 'width',
                  'height', 'stroke-width', 'font-size', 'opacity', 'offset', 'dx', 'dy'];
  const lists = ['viewBox', 'd', 'points', 'transform'];
  const found = [];
  for (const el of document.querySelectorAll('svg, svg *')) {
    for (const name of single) {
      const v = el.getAttribute(name);
      if (v !== null && /\d,\d/.test(v)) found.push(`${el.tagName} ${name}="${v}"`);
    }
    for (const name of lists) {
      const v = el.getAttribute(name);
      // A decimal comma shows as a token with more than one comma, or a comma in viewBox.
      if (v === null) continue;
      const bad = name === 'viewBox' ? /,/.test(v)
        : v.split(/[\sA-Za-z()]+/).some(t => (t.match(/,/g) || []).length > 1);
      if (bad) found.push(`${el.tagName} ${name}="${v.slice(0, 60)}"`);
    }
  }
  return found;
}"""

# What a person reads on the page: visible text nodes, and the placeholders, titles and
# labels of visible elements; not what is marked as another language (the language switch).
VISIBLE_TEXTS = r"""() => {
  const lang = document.documentElement.lang;
  const readable = el => el && el.checkVisibility() && !el.closest('script, style, template')
    && (el.closest('[lang]') || document.documentElement).lang === lang;
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.replace(/\s+/g, ' ').trim();
    if (text && readable(walker.currentNode.parentElement)) texts.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
    if (!readable(el)) continue;
    for (const name of ['placeholder', 'title', 'aria-label']) {
      const v = el.getAttribute(name);
      if (v) texts.push(v.replace(/\s+/g, ' ').trim());
    }
  }
  return texts;
}"""

# English that is the same word in a Russian or Kazakh interface, or too short to tell.
NOT_A_SENTENCE = {"NPS", "API", "CSV", "XLSX", "SMS", "Email", "JSON", "URL", "HTML", "OK"}
# The demo company's own data (names people gave things), not interface text; and the survey
# languages, which are named in themselves ("English" among "Русский" and "Қазақша").
DEMO_DATA = {"Delivery", "Office", "Kitchen"}
AUTONYMS = {name for _code, name in django_settings.SURVEY_LANGUAGES}


def pieces(texts: list[str]) -> set[str]:
    """Each text, and its parts between the separators the pages compose labels with
    ("New → Resolved (Problem fixed)", "Score 6 · After your visit")."""
    found = set(texts)
    for text in texts:
        found.update(part.strip() for part in re.split(r"[→←·()|:—]", text) if part.strip())
    return found


def english_messages(language: str) -> set[str]:
    """The catalogue's English messages that this language translates differently."""
    catalogue = polib.pofile(
        str(Path(django_settings.BASE_DIR) / "locale" / language / "LC_MESSAGES" / "django.po")
    )
    messages = set()
    for entry in catalogue:
        if entry.msgid_plural or not entry.msgstr or entry.msgstr == entry.msgid:
            continue
        if "%" in entry.msgid or "{" in entry.msgid:  # shown filled in, never verbatim
            continue
        msgid = re.sub(r"\s+", " ", entry.msgid).strip()
        if len(msgid) > 2 and msgid not in NOT_A_SENTENCE:
            messages.add(msgid)
    return messages


def test_the_main_navigation_is_never_clipped(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
    live_server,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    page.get_by_role("link", name="Dashboard").click()
    dashboard = page.url
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    for language in LANGUAGES:
        page.context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        for width in (1920, 1280, 390):
            page.set_viewport_size({"width": width, "height": 860})
            page.goto(dashboard)
            links = page.locator(".mainnav a")
            assert links.count() >= 9  # an owner sees every section, API keys and settings
            assert page.evaluate(CLIPPED_LINKS) == [], (language, width)
            assert page.evaluate(SIDEWAYS) <= 0, (language, width)
            page.screenshot(path=str(out / f"nav-{language}-{width}.png"))


def test_every_team_page_in_every_language(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
    live_server,
) -> None:
    """Every page of the navigation, a survey's editor (its SMS preview lines were one 2,950 px
    row), the alert rules and a follow-up's thread, at a desktop and a phone width, in English,
    Russian and Kazakh: nothing scrolls sideways, the navigation is whole, SVG numbers have a
    decimal point, and a Russian or Kazakh page shows no English message of the catalogue.
    A screenshot of each page goes to the test's output directory."""
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    page.get_by_role("link", name="Surveys").first.click()
    page.locator("a.row-title").first.click()
    editor = page.url
    pages = [str(u) for u in page.locator(".mainnav a").evaluate_all("a => a.map(x => x.href)")]
    # A resolved follow-up: its thread shows status changes and the resolution.
    page.goto(next(p for p in pages if "/inbox/" in p) + "?view=all&status=resolved")
    page.locator("a.row-title, table.list a").first.click()
    followup = page.url
    pages += [editor, followup, followup.split("/inbox/")[0] + "/inbox/rules/"]
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    wide: list[tuple[str, str, int, int, list[str]]] = []
    clipped: list[tuple[str, str, int, list[str]]] = []
    commas: list[tuple[str, str, list[str]]] = []
    english: dict[tuple[str, str], list[str]] = {}
    for language in LANGUAGES:
        page.context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        untranslated = english_messages(language) if language != "en" else set()
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 860})
            for number, address in enumerate(pages):
                page.goto(address)
                assert page.evaluate("document.documentElement.lang") == language, address
                path = address.removeprefix(live_server.url)
                if page.evaluate(SIDEWAYS) > 0:
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    wide.append((language, path, width, scroll, page.evaluate(STICKING_OUT)))
                if cut := page.evaluate(CLIPPED_LINKS):
                    clipped.append((language, path, width, cut))
                if found := page.evaluate(SVG_NUMBERS):
                    commas.append((language, path, found))
                if untranslated and width == 1280:
                    shown = pieces(page.evaluate(VISIBLE_TEXTS))
                    if leaks := sorted((shown & untranslated) - DEMO_DATA - AUTONYMS):
                        english[(language, path)] = leaks
                name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[-60:]
                page.screenshot(path=str(out / f"walk-{language}-{width}-{number:02d}-{name}.png"))
    problems = {
        "pages wider than the window (language, page, width, scroll width, what sticks out)": wide,
        "navigation links cut off": clipped,
        "SVG numbers with a decimal comma": commas,
        "English messages on Russian or Kazakh pages": english,
    }
    assert {k: v for k, v in problems.items() if v} == {}, pprint.pformat(problems, width=100)
