from django.urls import path

from notifications import views

app_name = "notifications"

# The development outbox; every view 404s unless settings.DEV_OUTBOX_ENABLED (embedded).
urlpatterns = [
    path("dev/outbox/", views.outbox_list, name="outbox"),
    path("dev/outbox.json", views.outbox_json, name="outbox-json"),
    path("dev/outbox/clear", views.outbox_clear_view, name="outbox-clear"),
    path("dev/outbox/<str:message_id>/html", views.outbox_html, name="outbox-html"),
]
