from django.urls import path, re_path

from companies import api

urlpatterns = [
    path("company/", api.CompanyApi.as_view(), name="api-company"),
    path("members/", api.MemberListApi.as_view(), name="api-members"),
    path("team-invitations/", api.InvitationListCreateApi.as_view(), name="api-team-invitations"),
    path(
        "team-invitations/<str:invite_id>/",
        api.InvitationDetailApi.as_view(),
        name="api-team-invitation",
    ),
    # Last: anything else under /api/v1/ is the API's JSON 404, not the HTML one.
    re_path(r"^.*$", api.NotFoundApi.as_view(), name="api-not-found"),
]
