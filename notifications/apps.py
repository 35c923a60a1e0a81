from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from notifications.receivers import on_tracking

        tracking.connect(on_tracking, dispatch_uid="notifications.on_tracking")
