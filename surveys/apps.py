from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "surveys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications.signals import address_suppressed, message_status_changed
        from surveys.receivers import (
            on_address_suppressed,
            on_address_suppressed_autopilot,
            on_message_status_changed,
        )

        message_status_changed.connect(
            on_message_status_changed, dispatch_uid="surveys.on_message_status_changed"
        )
        address_suppressed.connect(
            on_address_suppressed, dispatch_uid="surveys.on_address_suppressed"
        )
        address_suppressed.connect(
            on_address_suppressed_autopilot, dispatch_uid="surveys.on_address_suppressed_autopilot"
        )
