"""Company pages, mounted under /c/<company_slug>/ (see companies.middleware)."""

from django.urls import include, path

from companies import views

app_name = "companies"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("getting-started/", views.getting_started_toggle, name="getting-started"),
    path("settings/", views.company_settings, name="settings"),
    path("settings/sms/", views.company_sms_settings, name="sms-settings"),
    path("settings/security/", views.company_security_settings, name="security-settings"),
    path("", include("companies.urls_team")),
]
