"""Delighted's API at ``/v1/``: every path with or without ``.json``, never a trailing slash.

No route ends with a slash and the last one catches everything else, so Django's
``APPEND_SLASH`` never redirects here (a client replays a redirected POST as a GET).
"""

from django.urls import re_path

from delighted_compat.api import autopilot, base, views

J = r"(?:\.json)?$"

urlpatterns = [
    re_path(r"^people" + J, views.PeopleApi.as_view(), name="v1-people"),
    re_path(
        r"^people/(?P<email>[^/].*?)/survey_requests/pending" + J,
        views.PendingSurveyRequestsApi.as_view(),
        name="v1-person-pending",
    ),
    re_path(r"^people/(?P<identifier>[^/]+?)" + J, views.PersonApi.as_view(), name="v1-person"),
    re_path(r"^survey_responses" + J, views.SurveyResponsesApi.as_view(), name="v1-responses"),
    re_path(
        r"^survey_responses/(?P<response_id>[^/]+?)" + J,
        views.SurveyResponseApi.as_view(),
        name="v1-response",
    ),
    re_path(r"^metrics" + J, views.MetricsApi.as_view(), name="v1-metrics"),
    re_path(r"^unsubscribes" + J, views.UnsubscribesApi.as_view(), name="v1-unsubscribes"),
    re_path(r"^bounces" + J, views.BouncesApi.as_view(), name="v1-bounces"),
]

# Autopilot: one route per platform (any other platform is the 404 below).
for _platform in ("email", "sms"):
    urlpatterns += [
        re_path(
            rf"^autopilot/{_platform}" + J,
            autopilot.AutopilotConfigurationApi.as_view(channel=_platform),
            name=f"v1-autopilot-{_platform}",
        ),
        re_path(
            rf"^autopilot/{_platform}/memberships" + J,
            autopilot.AutopilotMembershipsApi.as_view(channel=_platform),
            name=f"v1-autopilot-{_platform}-memberships",
        ),
    ]

# Last, after every other module's routes (Autopilot's too): Delighted's JSON 404.
not_found = [re_path(r"^.*$", base.NotFoundApi.as_view(), name="v1-not-found")]
