from django.urls import path

from privacy import api

urlpatterns = [
    path("people/export/", api.PersonExportApi.as_view(), name="api-people-export"),
    path("people/erase/", api.PersonEraseApi.as_view(), name="api-people-erase"),
]
