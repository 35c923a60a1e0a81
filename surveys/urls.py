"""Survey pages under /c/<company_slug>/surveys/."""

from django.urls import path

from surveys import views, views_campaigns

app_name = "surveys"

urlpatterns = [
    # Campaigns first: "campaigns/" must not be read as a survey id by "<survey_id>/".
    path("campaigns/", views_campaigns.campaign_list, name="campaigns"),
    path("campaigns/<str:campaign_id>/", views_campaigns.campaign_detail, name="campaign"),
    path(
        "campaigns/<str:campaign_id>/progress/",
        views_campaigns.campaign_progress_view,
        name="campaign-progress",
    ),
    path("<str:survey_id>/send/", views_campaigns.survey_send, name="send"),
    # The survey editor (literal paths before "<survey_id>/").
    path("", views.survey_list, name="list"),
    path("new/", views.survey_create_view, name="create"),
    path("preview/", views.survey_preview, name="preview"),
    path("<str:survey_id>/", views.survey_edit, name="edit"),
    path("<str:survey_id>/status/", views.survey_status, name="status"),
    path("<str:survey_id>/qr.svg", views.survey_qr, {"fmt": "svg"}, name="qr-svg"),
    path("<str:survey_id>/qr.png", views.survey_qr, {"fmt": "png"}, name="qr-png"),
    path("<str:survey_id>/poster/", views.survey_poster, name="poster"),
]
