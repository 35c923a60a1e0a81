"""Respondent pages (no login): invitation answer links and survey web links."""

from django.urls import path

from responses import views_public

urlpatterns = [
    path("r/<str:token>/", views_public.answer, name="answer"),
    path("r/<str:token>/<int:score>/", views_public.answer, name="answer-score"),
    path("r/<str:token>/thanks/", views_public.answer_thanks, name="answer-thanks"),
    path("l/<str:public_id>/", views_public.link, name="link"),
    path("l/<str:public_id>/thanks/", views_public.link_thanks, name="link-thanks"),
]
