"""The company's single sign-on settings, under /c/<company_slug>/settings/sso/."""

from django.urls import path

from sso import views

app_name = "sso"

urlpatterns = [
    path("", views.sso_settings, name="settings"),
    path("domains/", views.sso_domain_add_view, name="domain_add"),
    path("domains/<str:sso_domain_id>/verify/", views.sso_domain_verify_view, name="domain_verify"),
    path("domains/<str:sso_domain_id>/remove/", views.sso_domain_remove_view, name="domain_remove"),
]
