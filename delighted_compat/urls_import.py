from __future__ import annotations

from django.urls import path

from delighted_compat import views_import

app_name = "delighted_import"

urlpatterns = [
    path("", views_import.delighted_upload, name="upload"),
    path("<str:batch_id>/", views_import.delighted_batch_view, name="batch"),
    path(
        "file/<str:delighted_import_id>/errors.csv",
        views_import.delighted_errors,
        name="errors",
    ),
]
