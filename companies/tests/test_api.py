"""The REST API's conventions and its company endpoints (/api/v1/)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import include, path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_views import CompanyAPIView
from companies.models import ApiKey, Company, Membership, Role, TeamInvite, User
from companies.services import api_key_revoke, team_invite_create
from conftest import add_member

pytestmark = pytest.mark.django_db

COMPANY_URL = "/api/v1/company/"
MEMBERS_URL = "/api/v1/members/"
INVITATIONS_URL = "/api/v1/team-invitations/"
READ_URLS = [COMPANY_URL, MEMBERS_URL, INVITATIONS_URL]


def bearer(key: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def get(url: str, headers: dict[str, Any] | None = None, **params: Any) -> Any:
    return Client().get(url, params, **(headers or {}))


def post_json(url: str, data: Any, headers: dict[str, Any] | None = None) -> Any:
    return Client().post(url, data, content_type="application/json", **(headers or {}))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# --- Authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("url", READ_URLS)
def test_missing_key_is_401_with_www_authenticate(url, company):
    error = assert_error(get(url), 401, "not_authenticated")
    assert "Bearer" in error["message"]
    assert get(url)["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    [
        "Token abc",  # another scheme
        "Basic dXNlcjpwYXNz",
        "Bearer",  # no key
        "Bearer two parts",
    ],
)
@pytest.mark.parametrize("url", READ_URLS)
def test_malformed_authorization_header_is_401(url, header, api_owner):
    response = get(url, {"HTTP_AUTHORIZATION": header})
    error = assert_error(response, 401, "authentication_failed")
    assert "Malformed Authorization header" in error["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        "nps_",
        "nps_abcd1234",  # no secret
        "nps_abcd1234_",
        "nps_XYZ_secret",  # prefix is not 8 hex digits
        "nps_abcd12345678901234567890_secret",
        "other_abcd1234_secret",
    ],
)
def test_malformed_key_is_401(key, company):
    response = get(COMPANY_URL, bearer(key))
    error = assert_error(response, 401, "authentication_failed")
    assert error["message"] == "Malformed API key."
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_unknown_key_is_401(api_owner):
    error = assert_error(
        get(COMPANY_URL, bearer("nps_0123abcd_" + "x" * 43)), 401, "authentication_failed"
    )
    assert error["message"] == "Unknown API key."


def test_known_prefix_with_wrong_secret_is_401(api_owner):
    prefix = api_owner.api_key.prefix
    forged = f"nps_{prefix}_{'A' * 43}"
    error = assert_error(get(COMPANY_URL, bearer(forged)), 401, "authentication_failed")
    assert error["message"] == "Unknown API key."


@pytest.mark.parametrize("url", READ_URLS)
def test_revoked_key_is_401(url, api_owner):
    assert get(url, api_owner.headers).status_code == 200
    api_key_revoke(company=api_owner.company, api_key=api_owner.api_key)
    response = get(url, api_owner.headers)
    error = assert_error(response, 401, "authentication_failed")
    assert "revoked" in error["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_using_a_key_records_last_use(api_owner):
    assert api_owner.api_key.last_used_at is None
    get(COMPANY_URL, api_owner.headers)
    key = ApiKey.objects.for_company(api_owner.company).get(pk=api_owner.api_key.pk)
    assert key.last_used_at is not None
    assert timezone.now() - key.last_used_at < timedelta(minutes=1)


# --- GET /api/v1/company/ ----------------------------------------------------------------------


def test_company_is_the_keys_company(api_owner, company):
    response = get(COMPANY_URL, api_owner.headers)
    assert response.status_code == 200
    assert response.json() == {
        "slug": company.slug,
        "name": "Acme Coffee",
        "industry": "retail",
        "country": "",
        "time_zone": "UTC",
        "default_language": "en",
        "sender_name": "Acme Coffee",
        "reply_to": None,  # none: null, never "" where the schema says email
        "retention_months": None,  # no retention policy: kept for ever
        "created_at": company.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_outsider_key_gets_its_own_company(api_owner, api_outsider, company, other_company):
    body = get(COMPANY_URL, api_outsider.headers).json()
    assert body["slug"] == other_company.slug
    assert body["name"] == "Globex Tea"
    assert company.slug not in str(body)


def test_read_only_key_reads_the_company(api_viewer, company):
    assert get(COMPANY_URL, api_viewer.headers).json()["slug"] == company.slug


# --- GET /api/v1/members/ ----------------------------------------------------------------------


def test_members_list(api_viewer, personas):
    response = get(MEMBERS_URL, api_viewer.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    rows = {row["email"]: row for row in body["results"]}
    assert set(rows) == {
        f"{role}@acme.test" for role in ("admin", "manager", "agent", "viewer")
    } | {"owner@acme.test"}
    assert rows["owner@acme.test"]["role"] == "owner"
    assert rows["agent@acme.test"]["role"] == "agent"
    assert set(rows["owner@acme.test"]) == {"email", "name", "role", "created_at"}


def test_members_list_never_shows_another_company(api_owner, api_outsider, personas, other_company):
    add_member(other_company, "spy@globex.test", Role.ADMIN)
    ours = {row["email"] for row in get(MEMBERS_URL, api_owner.headers).json()["results"]}
    theirs = {row["email"] for row in get(MEMBERS_URL, api_outsider.headers).json()["results"]}
    assert theirs == {"owner@globex.test", "spy@globex.test"}
    assert not ours & theirs
    assert all(email.endswith("@acme.test") for email in ours)


def test_members_cursor_pagination_walks_every_member_once(api_owner, company):
    bulk_members(company, 6)
    seen: list[str] = []
    url: str | None = MEMBERS_URL + "?page_size=3"
    pages = 0
    while url:
        body = Client().get(url, **api_owner.headers).json()
        assert len(body["results"]) <= 3
        seen += [row["email"] for row in body["results"]]
        url = body["next"]
        pages += 1
        if url:
            assert "cursor=" in url
            assert url.startswith("http://testserver/api/v1/members/")
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7  # six members and the owner


def test_page_size_is_capped(api_owner, company):
    response = get(MEMBERS_URL, api_owner.headers, page_size=100000)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_invalid_cursor_is_a_400_field_error(api_owner):
    # Was a 404 "Invalid cursor" that the schema did not document: it is bad input.
    error = assert_error(get(MEMBERS_URL, api_owner.headers, cursor="garbage"), 400, "invalid")
    assert list(error["fields"]) == ["cursor"]


def test_empty_cursor_is_the_first_page(api_owner):
    assert get(MEMBERS_URL, api_owner.headers, cursor="").status_code == 200


@pytest.mark.parametrize("page_size", ["null", "", "0", "-1", "1.5", "ten", "\u00b2"])
def test_page_size_that_is_not_a_whole_number_is_refused(api_owner, page_size):
    # page_size=null and friends used to fall back to 50 silently.
    error = assert_error(get(MEMBERS_URL, api_owner.headers, page_size=page_size), 400, "invalid")
    assert list(error["fields"]) == ["page_size"]


def test_page_size_above_the_maximum_is_capped(api_owner, company):
    bulk_members(company, 3)
    response = get(MEMBERS_URL, api_owner.headers, page_size="100000")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 4


def bulk_members(company: Company, count: int) -> None:
    """Many members fast: no password hashing (these people never log in)."""
    users = User.objects.bulk_create(
        User(email=f"bulk{n}@acme.test", password="!unusable") for n in range(count)
    )
    Membership.objects.bulk_create(
        Membership(company=company, user=user, role=Role.VIEWER) for user in users
    )


@pytest.mark.parametrize("extra_members", [2, 60])
def test_members_query_count_does_not_grow_with_members(
    extra_members, api_owner, company, django_assert_max_num_queries
):
    bulk_members(company, extra_members)
    get(COMPANY_URL, api_owner.headers)  # last_used_at written: later requests skip that
    # key lookup + one page of members (users joined in)
    with django_assert_max_num_queries(2):
        response = get(MEMBERS_URL, api_owner.headers, page_size=100)
    assert len(response.json()["results"]) == extra_members + 1


# --- /api/v1/team-invitations/ ----------------------------------------------------------------


def test_invite_a_teammate(api_owner, company, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_json(
            INVITATIONS_URL,
            {"email": "New.Person@Example.test", "role": "manager"},
            api_owner.headers,
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "role",
        "status",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    }
    assert body["status"] == "pending"
    assert body["accepted_at"] is None
    assert body["revoked_at"] is None
    invite = TeamInvite.objects.for_company(company).get()
    assert body["id"] == invite.public_id
    assert not body["id"].isdigit()
    assert body["email"] == invite.email == "new.person@example.test"
    assert body["role"] == invite.role == "manager"
    assert invite.invited_by is None
    assert invite.expires_at > timezone.now() + timedelta(days=settings.TEAM_INVITE_TTL_DAYS - 1)
    assert len(callbacks) == 1  # the invitation email goes out after commit
    assert "token" not in response.content.decode()


def test_read_only_key_cannot_invite(api_viewer, company):
    response = post_json(
        INVITATIONS_URL, {"email": "x@example.test", "role": "viewer"}, api_viewer.headers
    )
    error = assert_error(response, 403, "permission_denied")
    assert "read-only" in error["message"]
    assert TeamInvite.objects.for_company(company).count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "role": "viewer"}, "email"),
        ({"email": "", "role": "viewer"}, "email"),
        ({"role": "viewer"}, "email"),
        ({"email": "x@example.test", "role": "emperor"}, "role"),
        ({"email": "x@example.test", "role": "owner"}, "role"),
        ({"email": "x@example.test"}, "role"),
        ({"email": "x@example.test", "role": ["viewer"]}, "role"),
    ],
)
def test_bad_invitation_input_gives_field_errors(payload, field, api_owner, company):
    error = assert_error(post_json(INVITATIONS_URL, payload, api_owner.headers), 400, "invalid")
    assert field in error["fields"]
    assert isinstance(error["fields"][field], list)
    assert error["fields"][field][0]
    assert TeamInvite.objects.for_company(company).count() == 0


def test_inviting_a_member_is_a_field_error(api_owner, personas, company):
    response = post_json(
        INVITATIONS_URL, {"email": "Agent@acme.test", "role": "admin"}, api_owner.headers
    )
    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"email": ["This person is already a member."]}
    assert TeamInvite.objects.for_company(company).count() == 0


def test_a_member_of_another_company_can_be_invited(api_owner, other_company, company):
    response = post_json(
        INVITATIONS_URL, {"email": "owner@globex.test", "role": "agent"}, api_owner.headers
    )
    assert response.status_code == 201
    assert TeamInvite.objects.for_company(other_company).count() == 0


def test_pending_invitations_list(api_owner, api_viewer, company, personas):
    pending = team_invite_create(
        company=company, email="a@example.test", role="agent", invited_by=None
    )
    revoked = team_invite_create(
        company=company, email="b@example.test", role="agent", invited_by=None
    )
    revoked.invite.revoked_at = timezone.now()
    revoked.invite.save()
    expired = team_invite_create(
        company=company, email="c@example.test", role="agent", invited_by=None
    )
    expired.invite.expires_at = timezone.now() - timedelta(seconds=1)
    expired.invite.save()
    for key in (api_owner, api_viewer):  # a read-only key may read them
        body = get(INVITATIONS_URL, key.headers).json()
        assert [row["id"] for row in body["results"]] == [pending.invite.public_id]
        assert body["results"][0]["email"] == "a@example.test"
        assert body["next"] is None


def test_invitations_never_show_another_company(api_owner, api_outsider, company, other_company):
    team_invite_create(company=company, email="ours@example.test", role="agent", invited_by=None)
    post_json(
        INVITATIONS_URL, {"email": "theirs@example.test", "role": "viewer"}, api_outsider.headers
    )
    ours = [row["email"] for row in get(INVITATIONS_URL, api_owner.headers).json()["results"]]
    theirs = [row["email"] for row in get(INVITATIONS_URL, api_outsider.headers).json()["results"]]
    assert ours == ["ours@example.test"]
    assert theirs == ["theirs@example.test"]


def test_invitation_detail_and_revoke(api_owner, api_viewer, company):
    issued = team_invite_create(
        company=company, email="a@example.test", role="agent", invited_by=None
    )
    url = f"{INVITATIONS_URL}{issued.invite.public_id}/"
    body = get(url, api_viewer.headers).json()
    assert body["id"] == issued.invite.public_id
    assert body["role"] == "agent"
    # A read-only key may look but not revoke.
    assert_error(Client().delete(url, **api_viewer.headers), 403, "permission_denied")
    issued.invite.refresh_from_db()
    assert issued.invite.revoked_at is None
    response = Client().delete(url, **api_owner.headers)
    assert response.status_code == 204
    issued.invite.refresh_from_db()
    assert issued.invite.revoked_at is not None
    assert get(INVITATIONS_URL, api_owner.headers).json()["results"] == []
    # The revoked invitation still reads, and says so.
    body = get(url, api_owner.headers).json()
    assert body["status"] == "revoked"
    assert body["revoked_at"] is not None


def test_invitation_status_tells_expired_and_accepted(api_owner, company):
    expired = team_invite_create(
        company=company, email="late@example.test", role="agent", invited_by=None
    ).invite
    TeamInvite.objects.for_company(company).filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    accepted = team_invite_create(
        company=company, email="joined@example.test", role="agent", invited_by=None
    ).invite
    TeamInvite.objects.for_company(company).filter(pk=accepted.pk).update(
        accepted_at=timezone.now()
    )
    for invite, state in ((expired, "expired"), (accepted, "accepted")):
        body = get(f"{INVITATIONS_URL}{invite.public_id}/", api_owner.headers).json()
        assert body["status"] == state, body


def test_invitation_of_another_company_is_not_found(api_outsider, company):
    issued = team_invite_create(
        company=company, email="a@example.test", role="agent", invited_by=None
    )
    url = f"{INVITATIONS_URL}{issued.invite.public_id}/"
    assert_error(get(url, api_outsider.headers), 404, "not_found")
    assert_error(Client().delete(url, **api_outsider.headers), 404, "not_found")
    issued.invite.refresh_from_db()
    assert issued.invite.revoked_at is None
    assert_error(get(f"{INVITATIONS_URL}nope/", api_outsider.headers), 404, "not_found")


# --- The error format for everything else -----------------------------------------------------


@pytest.mark.parametrize("with_key", [True, False])
def test_unknown_route_is_a_json_404(with_key, api_owner):
    headers = api_owner.headers if with_key else {}
    for method in ("get", "post", "delete"):
        response = getattr(Client(), method)("/api/v1/no-such-thing/", **headers)
        error = assert_error(response, 404, "not_found")
        assert error["message"] == "Unknown API route."
    assert_error(get("/api/v1/", headers), 404, "not_found")


def test_missing_trailing_slash_is_a_json_404_with_a_hint(api_owner):
    error = assert_error(get("/api/v1/company", api_owner.headers), 404, "not_found")
    assert "/api/v1/company/" in error["message"]


def test_wrong_method_is_405(api_owner):
    error = assert_error(
        Client().delete(COMPANY_URL, **api_owner.headers), 405, "method_not_allowed"
    )
    assert "DELETE" in error["message"]


def test_form_encoded_body_is_415(api_owner):
    response = Client().post(
        INVITATIONS_URL, {"email": "x@example.test", "role": "viewer"}, **api_owner.headers
    )
    assert_error(response, 415, "unsupported_media_type")


def test_malformed_json_is_400(api_owner, company):
    response = Client().post(
        INVITATIONS_URL,
        '{"email": "x@example.test", ',
        content_type="application/json",
        **api_owner.headers,
    )
    error = assert_error(response, 400, "parse_error")
    assert "JSON" in error["message"]
    assert TeamInvite.objects.for_company(company).count() == 0


def _with_rate(rate: str) -> Any:
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": rate}}
    return override_settings(REST_FRAMEWORK=rest)


def test_throttled_per_key_with_retry_after(api_owner, api_viewer):
    with _with_rate("3/min"):
        for _n in range(3):
            assert get(COMPANY_URL, api_owner.headers).status_code == 200
        response = get(MEMBERS_URL, api_owner.headers)
        error = assert_error(response, 429, "throttled")
        assert 1 <= int(response["Retry-After"]) <= 60
        assert "throttled" in error["message"].lower()
        # The limit is per key: another key of the same company is unaffected.
        assert get(COMPANY_URL, api_viewer.headers).status_code == 200


def test_throttle_counts_per_key_in_the_shared_cache(api_owner):
    if settings.NPS_MODE == "test":  # the limit must hold across processes
        assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    window = int(time.time() // 3600)
    with _with_rate("100/hour"):
        get(COMPANY_URL, api_owner.headers)
        get(COMPANY_URL, api_owner.headers)
    if window == int(time.time() // 3600):  # not across an hour boundary
        assert cache.get(f"throttle:api_key:{api_owner.api_key.prefix}:{window}") == 2


class BoomApi(CompanyAPIView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("boom")


urlpatterns = [
    path("api/v1/boom/", BoomApi.as_view()),
    path("", include("nps_saas.urls")),
]


@pytest.mark.urls(__name__)
def test_unexpected_error_is_a_logged_json_500(api_owner, caplog):
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/boom/", **api_owner.headers)
    assert_error(response, 500, "server_error")
    assert "boom" not in response.content.decode()
    assert any("Internal Server Error: /api/v1/boom/" in r.getMessage() for r in caplog.records)
    # Error trackers see it too: the test client re-raises what got_request_exception saw.
    with pytest.raises(RuntimeError, match="boom"):
        Client().get("/api/v1/boom/", **api_owner.headers)


# --- Schema and docs ----------------------------------------------------------------------------


def test_schema_is_public_and_describes_the_bearer_scheme(db):
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/company/", "/api/v1/members/", "/api/v1/team-invitations/"} <= set(
        schema["paths"]
    )
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    create = schema["paths"]["/api/v1/team-invitations/"]["post"]
    assert create["security"] == [{"ApiKey": []}]
    assert set(create["responses"]) == {"201", "400", "401", "403", "413", "415", "429"}
    members = schema["paths"]["/api/v1/members/"]["get"]
    assert {p["name"] for p in members["parameters"]} == {"cursor", "page_size"}
    # A bad key does not lock anyone out of the public documentation.
    assert Client().get("/api/schema/", **bearer("nonsense")).status_code == 200


def test_schema_validates_without_warnings(tmp_path: Path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/v1/team-invitations/" in yaml.safe_load(out.read_text())["paths"]


def test_docs_page_has_no_inline_script_and_no_cdn(db):
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 3
    assert all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    script_url = re.search(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', html)
    assert script_url
    init = Client().get(script_url.group(1).replace("&amp;", "&"))
    assert init.status_code == 200
    assert init["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in init.content.decode()
    assert '"/api/schema/"' in init.content.decode()


def test_schema_and_docs_are_reachable_without_any_company(db):
    assert Company.objects.count() == 0
    assert Client().get("/api/docs/").status_code == 200
