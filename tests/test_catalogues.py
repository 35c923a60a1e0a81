"""The interface is complete in Russian and Kazakh: every message of the sources is in both
catalogues, translated, not fuzzy, with the same placeholders, and the committed .mo files say
what the .po files say.

The catalogues are regenerated from the sources in a temporary copy of the tree, exactly as
``make messages`` does, so a string marked in the code but missing from a catalogue fails too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib  # type: ignore[import-untyped]  # no stubs installed (types-polib)
import pytest
from django.conf import settings

LANGUAGES = ("ru", "kk")
# What makemessages reads: code and templates. Everything else stays out of the copy.
SOURCE_SUFFIXES = (".py", ".html", ".txt")
SKIPPED_DIRS = {
    ".venv",
    ".git",
    "var",
    "node_modules",
    "test-results",
    "staticfiles",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "locale",
}
# The same command as the Makefile's `messages` target.
MAKEMESSAGES = [
    "makemessages",
    *("-l", "ru", "-l", "kk"),
    *("--add-location", "file", "--no-obsolete"),
    *("-i", "var", "-i", "node_modules", "-i", "test-results", "-i", "staticfiles"),
]

Key = tuple[str | None, str]


def _catalogue(language: str) -> Path:
    return Path(settings.BASE_DIR) / "locale" / language / "LC_MESSAGES" / "django.po"


def _require_gettext() -> None:
    missing = [tool for tool in ("xgettext", "msgmerge", "msgfmt") if not shutil.which(tool)]
    if missing:
        pytest.fail(f"GNU gettext missing ({', '.join(missing)}): apt-get install gettext")


def _copy_sources(base: Path, target: Path) -> None:
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in files:
            if name.endswith(SOURCE_SUFFIXES):
                source = Path(root) / name
                destination = target / source.relative_to(base)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
    for language in LANGUAGES:
        po = _catalogue(language)
        destination = target / po.relative_to(base)
        destination.parent.mkdir(parents=True)
        shutil.copy2(po, destination)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, polib.POFile]:
    """The catalogues ``make messages`` would write from the sources as they are now."""
    _require_gettext()
    tree = tmp_path_factory.mktemp("tree")
    _copy_sources(Path(settings.BASE_DIR), tree)
    run = subprocess.run(  # noqa: S603 (our own manage.py, fixed arguments)
        [sys.executable, "manage.py", *MAKEMESSAGES],
        cwd=tree,
        env={**os.environ, "NPS_MODE": "test"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return {
        language: polib.pofile(str(tree / "locale" / language / "LC_MESSAGES" / "django.po"))
        for language in LANGUAGES
    }


def _key(entry: polib.POEntry) -> Key:
    return (entry.msgctxt, entry.msgid)


def _show(entries: list[polib.POEntry]) -> str:
    return "\n".join(
        f"  {e.msgid!r}" + (f" (context {e.msgctxt!r})" if e.msgctxt else "") for e in entries
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated(regenerated: dict[str, polib.POFile], language: str) -> None:
    catalogue = regenerated[language]
    assert len(catalogue) > 500  # the copy held the sources
    untranslated = [e for e in catalogue if not e.obsolete and not e.translated()]
    fuzzy = [e for e in catalogue if not e.obsolete and "fuzzy" in e.flags]
    assert (len(untranslated), len(fuzzy)) == (0, 0), (
        f"{language}: {len(untranslated)} untranslated and {len(fuzzy)} fuzzy messages "
        f"(run `make messages`, translate them in locale/{language}/LC_MESSAGES/django.po, "
        f"run it again):\nuntranslated:\n{_show(untranslated)}\nfuzzy:\n{_show(fuzzy)}"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_catalogue_is_the_regenerated_one(
    regenerated: dict[str, polib.POFile], language: str
) -> None:
    """No message missing from the committed .po, none left over that the code no longer
    has: `make messages` was run after the last change of a string."""
    committed = {_key(e) for e in polib.pofile(str(_catalogue(language))) if not e.obsolete}
    fresh = {_key(e) for e in regenerated[language] if not e.obsolete}
    assert sorted(fresh - committed, key=str) == [], "missing: run `make messages`"
    assert sorted(committed - fresh, key=str) == [], "stale: run `make messages`"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogue_passes_msgfmt_check(language: str) -> None:
    """Same placeholders in every python-format translation, a valid header, as many plural
    forms as the header says (3 in Russian, 2 in Kazakh)."""
    _require_gettext()
    run = subprocess.run(  # noqa: S603
        ["msgfmt", "--check", "-o", os.devnull, str(_catalogue(language))],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    header = polib.pofile(str(_catalogue(language))).metadata["Plural-Forms"]
    assert header.startswith({"ru": "nplurals=3;", "kk": "nplurals=2;"}[language]), header


def _messages(catalogue: polib.POFile | polib.MOFile) -> dict[Key, tuple[str, ...]]:
    messages: dict[Key, tuple[str, ...]] = {}
    for entry in catalogue:
        if entry.obsolete or "fuzzy" in entry.flags or not entry.msgid:
            continue
        if entry.msgid_plural:
            forms = tuple(entry.msgstr_plural[i] for i in sorted(entry.msgstr_plural))
            if all(forms):
                messages[_key(entry)] = forms
        elif entry.msgstr:
            messages[_key(entry)] = (entry.msgstr,)
    return messages


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_mo_is_the_compiled_po(language: str) -> None:
    po_path = _catalogue(language)
    po = polib.pofile(str(po_path))
    mo = polib.mofile(str(po_path.with_suffix(".mo")))
    assert mo.metadata.get("Plural-Forms") == po.metadata.get("Plural-Forms")
    compiled, source = _messages(mo), _messages(po)
    differ = sorted(k for k in compiled.keys() | source.keys() if compiled.get(k) != source.get(k))
    assert differ == [], f"locale/{language}: the .mo is stale, run `make messages`"


def test_kazakh_says_thank_you_one_way() -> None:
    # Two spellings were in use (surveys/defaults.py, the demo, the catalogue): one is kept.
    variant = "Ра" + "қмет"
    base = Path(settings.BASE_DIR)
    found = []
    for root, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS - {"locale"}]
        for name in files:
            if name.endswith((*SOURCE_SUFFIXES, ".po")):
                path = Path(root) / name
                if variant.casefold() in path.read_text(encoding="utf-8").casefold():
                    found.append(str(path.relative_to(base)))
    assert found == [], f"write Рахмет, not {variant}"
