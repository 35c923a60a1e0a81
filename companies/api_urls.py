from django.urls import path

from companies import api

urlpatterns = [
    path("company/", api.CompanyApi.as_view(), name="api-company"),
    path("members/", api.MemberListApi.as_view(), name="api-members"),
]
