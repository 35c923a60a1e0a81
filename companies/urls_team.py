"""Team pages: members, teammate invitations, API keys (under /c/<company_slug>/)."""

from django.urls import path

from companies import views_team

urlpatterns = [
    path("team/", views_team.team, name="team"),
    path("team/leave/", views_team.team_leave, name="team_leave"),
    path(
        "team/members/<str:member_id>/role/",
        views_team.member_role,
        name="team_member_role",
    ),
    path(
        "team/members/<str:member_id>/remove/",
        views_team.member_remove,
        name="team_member_remove",
    ),
    path(
        "team/invites/<str:invite_id>/revoke/",
        views_team.invite_revoke,
        name="team_invite_revoke",
    ),
    path("api-keys/", views_team.api_keys, name="api_keys"),
    path(
        "api-keys/<str:key_id>/revoke/",
        views_team.api_key_revoke_view,
        name="api_key_revoke",
    ),
]
