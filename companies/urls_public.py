"""Company pages reached without a company in the URL (the link carries its own scope)."""

from django.urls import path

from companies import views_team

urlpatterns = [
    path("invites/<str:token>/", views_team.invite_accept, name="invite-accept"),
]
