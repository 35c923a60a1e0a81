"""Data subject rights in the web app, mounted under /c/<company_slug>/privacy/."""

from django.urls import path

from privacy import views

app_name = "privacy"

urlpatterns = [
    path("", views.personal_data, name="personal-data"),
]
