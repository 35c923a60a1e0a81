from django.urls import path

from dashboards import api

urlpatterns = [
    path("metrics/", api.CompanyMetricsApi.as_view(), name="api-metrics"),
    path(
        "surveys/<str:survey_id>/metrics/",
        api.SurveyMetricsApi.as_view(),
        name="api-survey-metrics",
    ),
]
