"""The triage inbox and the alert rules under /c/<company_slug>/inbox/."""

from django.urls import path

from responses import views_inbox

app_name = "inbox"

urlpatterns = [
    path("", views_inbox.inbox, name="list"),
    path("bulk/", views_inbox.inbox_bulk, name="bulk"),
    path("f/<str:followup_id>/", views_inbox.followup_detail, name="followup"),
    path("f/<str:followup_id>/assign/", views_inbox.followup_assign_view, name="assign"),
    path("f/<str:followup_id>/status/", views_inbox.followup_status_view, name="status"),
    path("f/<str:followup_id>/note/", views_inbox.followup_note_view, name="note"),
    path("f/<str:followup_id>/reply/", views_inbox.followup_reply_view, name="reply"),
    path("rules/", views_inbox.rule_list, name="rules"),
    path("rules/new/", views_inbox.rule_create, name="rule-create"),
    path("rules/<str:rule_id>/", views_inbox.rule_edit, name="rule-edit"),
    path("rules/<str:rule_id>/delete/", views_inbox.rule_delete, name="rule-delete"),
]
