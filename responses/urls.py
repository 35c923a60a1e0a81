"""Response pages under /c/<company_slug>/responses/."""

from django.urls import path

from responses import views

app_name = "responses"

urlpatterns = [
    path("", views.response_list, name="list"),
]
