"""The login page's "Sign in with SSO", under /accounts/sso/."""

from django.urls import path

from sso import views

urlpatterns = [path("", views.sso_start, name="sso_start")]
