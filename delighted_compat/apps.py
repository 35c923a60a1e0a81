from django.apps import AppConfig


class DelightedCompatConfig(AppConfig):
    """A home for Delighted's customers: its API at ``/v1/`` and an importer for its exports.

    The top of the dependency chain (it uses surveys, responses and dashboards; nothing uses
    it). Not named ``delighted``: that is the official client package the tests run.
    """

    name = "delighted_compat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from delighted_compat.webhooks import delighted_event_data
        from notifications.webhooks import webhook_format_register

        webhook_format_register(delighted_event_data)
