"""A survey's widget pages under /c/<company_slug>/surveys/<survey_id>/widget/."""

from django.urls import path

from widget import views

app_name = "widget"

urlpatterns = [
    path("", views.widget_settings, name="settings"),
    path("rotate/", views.widget_rotate, name="rotate"),
]
