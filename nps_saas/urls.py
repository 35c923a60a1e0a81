from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from delighted_compat.api.urls import not_found as not_found_v1
from delighted_compat.views_api_keys import delighted_api_keys
from nps_saas import health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/sso/", include("sso.urls_public")),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("", include("companies.urls_public")),
    path(
        "c/<slug:company_slug>/api-keys/delighted/",
        delighted_api_keys,
        name="delighted_api_keys",
    ),
    path("c/<slug:company_slug>/settings/sso/", include("sso.urls")),
    path("c/<slug:company_slug>/", include("companies.urls")),
    path("c/<slug:company_slug>/surveys/<str:survey_id>/widget/", include("widget.urls")),
    path("c/<slug:company_slug>/surveys/", include("surveys.urls")),
    path("c/<slug:company_slug>/contacts/", include("surveys.urls_contacts")),
    path("c/<slug:company_slug>/import/delighted/", include("delighted_compat.urls_import")),
    path("c/<slug:company_slug>/responses/", include("responses.urls")),
    path("c/<slug:company_slug>/dashboard/", include("dashboards.urls")),
    path("c/<slug:company_slug>/inbox/", include("responses.urls_inbox")),
    path("c/<slug:company_slug>/webhooks/", include("notifications.urls_webhooks")),
    path("c/<slug:company_slug>/privacy/", include("privacy.urls")),
    path("c/<slug:company_slug>/audit/", include("audit.urls")),
    path("", include("responses.urls_public")),
    path("", include("widget.urls_public")),
    path("", include("responses.urls_sms")),
    path("api/v1/", include("surveys.api_urls")),
    path("api/v1/", include("responses.api_urls")),
    path("api/v1/", include("dashboards.api_urls")),
    path("api/v1/", include("privacy.api_urls")),
    path("api/v1/", include("audit.api_urls")),
    # Last: it ends with the catch-all JSON 404 of the API.
    path("api/v1/", include("companies.api_urls")),
    # Delighted's API (delighted_compat): its own paths, auth and formats; the JSON 404 last.
    path("v1/", include("delighted_compat.api.urls")),
    path("v1/", include(not_found_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Public (no tenant data). The split view serves its start-up script from a URL instead
    # of inline, which our CSP (script-src 'self') requires.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("notifications.urls")),
    path("admin/", admin.site.urls),
]
