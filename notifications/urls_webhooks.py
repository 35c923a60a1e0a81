"""Outbound webhook endpoints under /c/<company_slug>/webhooks/ (admins)."""

from django.urls import path

from notifications import views_webhooks

app_name = "webhooks"

urlpatterns = [
    path("", views_webhooks.endpoint_list, name="list"),
    path("new/", views_webhooks.endpoint_create, name="create"),
    path("<str:endpoint_id>/", views_webhooks.endpoint_detail, name="detail"),
    path("<str:endpoint_id>/edit/", views_webhooks.endpoint_edit, name="edit"),
    path("<str:endpoint_id>/test/", views_webhooks.endpoint_test, name="test"),
    path("<str:endpoint_id>/state/", views_webhooks.endpoint_state, name="state"),
    path("<str:endpoint_id>/rotate/", views_webhooks.endpoint_rotate, name="rotate"),
    path("<str:endpoint_id>/delete/", views_webhooks.endpoint_delete, name="delete"),
]
