"""The widget's public addresses (no company in the path: the publishable key names it)."""

from django.urls import path

from widget import views_public

urlpatterns = [
    path("w/nps.js", views_public.script, name="widget-script"),
    path("w/show/", views_public.show, name="widget-show"),
    path("w/answer/", views_public.answer, name="widget-answer"),
    path("w/dismiss/", views_public.dismiss, name="widget-dismiss"),
]
