"""The website widget in Chromium, embedded in a host page served from ANOTHER origin (its own
port) under a strict Content-Security-Policy that allows only itself and our origin."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from companies.models import Company
from responses.models import Followup, Response
from responses.tests.conftest import make_survey
from surveys.models import Contact, Survey
from tests.browser.conftest import chromium_page  # noqa: F401 (the fixture)
from widget.models import WidgetSettings, WidgetView
from widget.services import identity_signature, widget_settings_update
from widget.views_public import script_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The host's own code: the usual stub, then whatever the test asks for (JSON, never code).
HOST_JS = """
window.nps = window.nps || function () { (window.nps.q = window.nps.q || []).push(arguments); };
window.addEventListener("nps:decision", function (e) {
  var decision = e.detail.show ? "shown" : "skipped:" + e.detail.reason;
  document.body.setAttribute("data-decision", decision);
});
var call = %(call)s;
if (call.delighted) {
  window.delighted = window.delighted || [];
  if (window.delighted.survey) window.delighted.survey(call.delighted);
  else window.delighted.push(["survey", call.delighted]);
} else if (call.nps) {
  nps("survey", call.nps);
}
"""


class Host:
    """A tiny site on its own port: /app/... pages embed our script, /host.js calls it."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.key = ""
        self.call: dict[str, Any] = {}
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/host.js"):
                    body = HOST_JS % {"call": json.dumps(host.call)}
                    self._send(body, "text/javascript")
                    return
                page = (
                    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                    '<meta name="viewport" content="width=device-width, initial-scale=1">'
                    "<title>Host app</title>"
                    f'<script async src="{host.api}/w/nps.js?v={script_version()}"'
                    f' data-key="{host.key}"></script>'
                    '<script src="/host.js"></script>'
                    + ("<style>h1{color:red}</style>" if "probe" in self.path else "")
                    + "</head><body><h1>Our product</h1><p>Content.</p></body></html>"
                )
                self._send(page, "text/html")

            def _send(self, body: str, kind: str) -> None:
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header(
                    "Content-Security-Policy",
                    f"default-src 'none'; script-src 'self' {host.api}; "
                    f"connect-src {host.api}; style-src 'self'; img-src 'self'",
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self, path: str = "/app/home") -> str:
        return self.origin + path


@pytest.fixture
def host(live_server: Any) -> Iterator[Host]:
    site = Host(live_server.url)
    site.thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()


@pytest.fixture
def csp_errors(chromium_page: Page) -> list[str]:  # noqa: F811
    errors: list[str] = []
    chromium_page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return errors


def _widget(company: Company, survey: Survey, host: Host, **fields: Any) -> WidgetSettings:
    values: dict[str, Any] = {"enabled": True, "allowed_origins": [host.origin], "delay_seconds": 0}
    values.update(fields)
    widget = widget_settings_update(company=company, survey=survey, **values)
    host.key = widget.publishable_key
    return widget


def _open(page: Page, host: Host, path: str = "/app/home") -> None:
    page.goto(host.page(path))
    expect(page.locator("body[data-decision]")).to_have_count(1)


def test_an_identified_user_answers_inside_the_host_page(
    chromium_page: Page,  # noqa: F811
    company: Company,
    host: Host,
    csp_errors: list[str],
) -> None:
    page = chromium_page
    survey = make_survey(company, accent_color="#0a7f3f")
    _widget(company, survey, host)
    host.call = {
        "nps": {
            "email": "ann@customer.test",
            "name": "Ann",
            "external_id": "u-42",
            "properties": {"plan": "pro"},
        }
    }
    _open(page, host, "/app/settings?tab=team")
    expect(page.locator("body")).to_have_attribute("data-decision", "shown")
    expect(page.get_by_role("region", name="How likely")).to_be_visible()
    # Keyboard: Tab to the scale, arrows along it, Enter picks.
    page.locator("[data-nps-widget] button[data-score='0']").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    comment = page.locator("[data-nps-widget] textarea")
    expect(comment).to_be_focused()
    expect(page.locator("[data-nps-widget] button[data-score='3']")).to_have_attribute(
        "aria-pressed", "true"
    )
    comment.fill("Too slow on Mondays")
    page.locator("[data-nps-widget] button.go").click()
    expect(page.locator("[data-nps-widget] [data-thanks]")).to_be_visible()
    expect(page.locator("[data-nps-widget] [data-thanks]")).to_be_focused()

    saved = Response.objects.for_company(company).get()
    assert (saved.score, saved.comment, saved.channel) == (3, "Too slow on Mondays", "widget")
    assert saved.invitation_properties == {
        "plan": "pro",
        "page_url": host.page("/app/settings?tab=team"),
    }
    assert saved.contact == Contact.objects.for_company(company).get(external_id="u-42")
    assert Followup.objects.for_company(company).filter(response=saved).exists()
    # The accent colour is the survey's.
    colour = page.locator("[data-nps-widget] button.go").evaluate(
        "b => getComputedStyle(b).backgroundColor"
    )
    assert colour == "rgb(10, 127, 63)"

    # Reloading does not ask again (the throttle window).
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-decision", "skipped:throttled")
    expect(page.locator("[data-nps-widget]")).to_have_count(0)
    assert csp_errors == []
    # The policy is really enforced (and its reports really seen): an inline style is refused.
    page.goto(host.page("/app/probe"))
    expect(page.locator("body[data-decision]")).to_have_count(1)
    assert csp_errors != []


def test_a_dismissed_survey_stays_away_for_its_cooldown(
    chromium_page: Page,  # noqa: F811
    company: Company,
    host: Host,
) -> None:
    page = chromium_page
    survey = make_survey(company)
    _widget(company, survey, host, dismissal_cooldown_days=7)
    host.call = {"nps": {"email": "bob@customer.test"}}
    _open(page, host)
    expect(page.locator("body")).to_have_attribute("data-decision", "shown")
    # The dismissal is a keepalive request: it survives the reload, but the reloaded page's own
    # "show?" call could reach the server first. Wait until the dismissal is answered.
    with page.expect_response("**/w/dismiss/") as dismissal:
        page.locator("[data-nps-widget] button[data-score='5']").focus()
        page.keyboard.press("Escape")
    assert dismissal.value.ok
    expect(page.locator("[data-nps-widget]")).to_have_count(0)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-decision", "skipped:throttled")
    assert WidgetView.objects.for_company(company).get().dismissed_at is not None
    assert not Response.objects.for_company(company).exists()

    WidgetView.objects.for_company(company).update(dismissed_at=timezone.now() - timedelta(days=8))
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-decision", "shown")


def test_an_origin_not_allowed_gets_nothing(
    chromium_page: Page,  # noqa: F811
    company: Company,
    host: Host,
) -> None:
    page = chromium_page
    survey = make_survey(company)
    _widget(company, survey, host, allowed_origins=["https://elsewhere.example"])
    host.call = {"nps": {"email": "ann@customer.test"}}
    _open(page, host)
    expect(page.locator("body")).to_have_attribute("data-decision", "skipped:refused")
    expect(page.locator("[data-nps-widget]")).to_have_count(0)
    assert not WidgetView.objects.for_company(company).exists()
    assert not Contact.objects.for_company(company).exists()


def test_identity_verification_refuses_unsigned_calls(
    chromium_page: Page,  # noqa: F811
    company: Company,
    host: Host,
) -> None:
    page = chromium_page
    survey = make_survey(company)
    _widget(company, survey, host, verify_identity=True)
    host.call = {"nps": {"email": "ann@customer.test"}}
    _open(page, host)
    expect(page.locator("body")).to_have_attribute("data-decision", "skipped:signature")
    expect(page.locator("[data-nps-widget]")).to_have_count(0)
    signature = identity_signature(company=company, identity="ann@customer.test")
    host.call = {"nps": {"email": "ann@customer.test", "signature": signature}}
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-decision", "shown")


def test_delighted_call_shape_in_russian(
    chromium_page: Page,  # noqa: F811
    company: Company,
    host: Host,
) -> None:
    page = chromium_page
    survey = make_survey(company)
    _widget(company, survey, host)
    host.call = {
        "delighted": {
            "email": "ivan@customer.test",
            "name": "Ivan",
            "createdAt": (timezone.now() - timedelta(days=40)).isoformat(),
            "properties": {"plan": "team", "locale": "ru"},
        }
    }
    _open(page, host)
    expect(page.locator("body")).to_have_attribute("data-decision", "shown")
    expect(page.locator("[data-nps-widget] .bar")).to_have_attribute("lang", "ru")
    page.locator("[data-nps-widget] button[data-score='9']").click()
    page.locator("[data-nps-widget] textarea").fill("Отлично")
    page.locator("[data-nps-widget] button.go").click()
    expect(page.locator("[data-nps-widget] [data-thanks]")).to_be_visible()
    saved = Response.objects.for_company(company).get()
    assert (saved.score, saved.comment, saved.language) == (9, "Отлично", "ru")
    assert saved.invitation_properties["plan"] == "team"
    assert Contact.objects.for_company(company).get().name == "Ivan"


def test_the_widget_fits_a_phone(
    chromium_page: Page,  # noqa: F811
    company: Company,
    host: Host,
) -> None:
    page = chromium_page
    page.set_viewport_size({"width": 360, "height": 740})
    survey = make_survey(company)
    _widget(company, survey, host)
    host.call = {}  # an anonymous visitor: no call at all
    _open(page, host)
    expect(page.locator("body")).to_have_attribute("data-decision", "shown")
    for score in range(11):
        button = page.locator(f"[data-nps-widget] button[data-score='{score}']")
        box = button.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 360
        assert box["width"] >= 20
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    close = page.get_by_role("button", name="Close the survey")
    expect(close).to_be_visible()
    page.locator("[data-nps-widget] button[data-score='10']").click()
    page.locator("[data-nps-widget] button.go").click()
    expect(page.locator("[data-nps-widget] [data-thanks]")).to_be_visible()
    saved = Response.objects.for_company(company).get()
    assert saved.contact is None
    assert urlsplit(saved.invitation_properties["page_url"]).netloc == urlsplit(host.origin).netloc
