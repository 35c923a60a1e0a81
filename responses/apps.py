from django.apps import AppConfig


class ResponsesConfig(AppConfig):
    name = "responses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import inbound
        from django.db.models.signals import post_save

        from companies.models import Company
        from responses.receivers import on_company_saved, on_inbound_email, on_response_saved
        from responses.signals import response_saved

        response_saved.connect(on_response_saved, dispatch_uid="responses.on_response_saved")
        post_save.connect(
            on_company_saved, sender=Company, dispatch_uid="responses.on_company_saved"
        )
        inbound.connect(on_inbound_email, dispatch_uid="responses.on_inbound_email")
