"""Twilio's inbound message webhook (public; Twilio signs every post)."""

from django.urls import path

from responses import views_sms

urlpatterns = [
    path("twilio/inbound/", views_sms.twilio_inbound, name="twilio-inbound"),
]
