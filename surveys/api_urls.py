"""URL patterns (being built)."""

from django.urls import path

from surveys import api, api_campaigns, api_contacts

urlpatterns = [
    path("surveys/", api.SurveyListCreateApi.as_view(), name="api-surveys"),
    path("surveys/<str:survey_id>/", api.SurveyDetailApi.as_view(), name="api-survey"),
    path("contacts/", api_contacts.ContactListCreateApi.as_view(), name="api-contacts"),
    path(
        "contacts/<str:contact_id>/",
        api_contacts.ContactDetailApi.as_view(),
        name="api-contact",
    ),
    path(
        "contact-imports/",
        api_contacts.ContactImportCreateApi.as_view(),
        name="api-contact-imports",
    ),
    path(
        "contact-imports/<str:import_id>/",
        api_contacts.ContactImportDetailApi.as_view(),
        name="api-contact-import",
    ),
    path(
        "contact-imports/<str:import_id>/errors.csv",
        api_contacts.ContactImportErrorsApi.as_view(),
        name="api-contact-import-errors",
    ),
    path(
        "surveys/<str:survey_id>/invitations/",
        api_campaigns.InvitationTriggerApi.as_view(),
        name="api-survey-invitations",
    ),
    path("invitations/", api_campaigns.InvitationListApi.as_view(), name="api-invitations"),
    path(
        "invitations/<str:invitation_id>/",
        api_campaigns.InvitationDetailApi.as_view(),
        name="api-invitation",
    ),
    path("campaigns/", api_campaigns.CampaignListCreateApi.as_view(), name="api-campaigns"),
    path(
        "campaigns/<str:campaign_id>/",
        api_campaigns.CampaignDetailApi.as_view(),
        name="api-campaign",
    ),
]
