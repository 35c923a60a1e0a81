"""Response pages under /c/<company_slug>/responses/."""

from django.urls import path

from responses import views

app_name = "responses"

urlpatterns = [
    path("", views.response_list, name="list"),
    path("export.csv", views.response_export, {"fmt": "csv"}, name="export-csv"),
    path("export.xlsx", views.response_export, {"fmt": "xlsx"}, name="export-xlsx"),
]
