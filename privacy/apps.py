from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Data subject rights (GDPR art. 15, 17, 20): one person's data exported or erased.

    Sits above every app that holds a person's data (surveys, responses, notifications,
    dashboards, delighted_compat, widget), as the one place that knows where all of it lives.
    """

    name = "privacy"
    default_auto_field = "django.db.models.BigAutoField"
