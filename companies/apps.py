from django.apps import AppConfig


class CompaniesConfig(AppConfig):
    name = "companies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from companies import schema  # noqa: F401  (registers the OpenAPI auth extension)
