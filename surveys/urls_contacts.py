"""Contact pages under /c/<company_slug>/contacts/."""

from django.urls import path

from surveys import views_contacts

app_name = "contacts"

urlpatterns = [
    path("", views_contacts.contact_list, name="list"),
    path("new/", views_contacts.contact_create, name="create"),
    path("import/", views_contacts.import_upload, name="import"),
    path("import/<str:import_id>/", views_contacts.import_detail, name="import_detail"),
    path("import/<str:import_id>/mapping/", views_contacts.import_mapping, name="import_mapping"),
    path("import/<str:import_id>/errors.csv", views_contacts.import_errors, name="import_errors"),
    path("<str:contact_id>/", views_contacts.contact_detail, name="detail"),
    path("<str:contact_id>/edit/", views_contacts.contact_edit, name="edit"),
    path("<str:contact_id>/delete/", views_contacts.contact_delete_view, name="delete"),
]
