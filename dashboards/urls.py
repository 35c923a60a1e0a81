"""Dashboard pages under /c/<company_slug>/dashboard/."""

from django.urls import path

from dashboards import views

app_name = "dashboards"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("trend.csv", views.trend_export, name="trend-csv"),
    path("settings/", views.dashboard_settings, name="settings"),
]
