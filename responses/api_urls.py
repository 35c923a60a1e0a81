from django.urls import path

from responses import api

urlpatterns = [
    path("responses/", api.ResponseListApi.as_view(), name="api-responses"),
]
