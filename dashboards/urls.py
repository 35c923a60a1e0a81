"""Dashboard pages under /c/<company_slug>/dashboard/."""

from django.urls import path

from dashboards import campaign_views, digest_views, views

app_name = "dashboards"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("trend.csv", views.trend_export, name="trend-csv"),
    path("settings/", views.dashboard_settings, name="settings"),
    path(
        "campaigns/<str:campaign_id>/",
        campaign_views.campaign_results,
        name="campaign-results",
    ),
    path("digest/", digest_views.digest_settings, name="digest"),
    path("digest/addresses/", digest_views.digest_address_add_view, name="digest-address-add"),
    path(
        "digest/addresses/<str:digest_address_id>/delete/",
        digest_views.digest_address_delete_view,
        name="digest-address-delete",
    ),
]
