"""Company pages, mounted under /c/<company_slug>/ (see companies.middleware)."""

from django.urls import include, path

from companies import views

app_name = "companies"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("", include("companies.urls_team")),
]
