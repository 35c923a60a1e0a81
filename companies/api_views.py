"""Base class of every tenant API endpoint (kept apart from api_base: DRF imports settings)."""

from __future__ import annotations

from typing import Any

from rest_framework import generics
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request

from companies.models import ApiKey, Company


class Metadata(SimpleMetadata):
    """OPTIONS answers: the view's name, description and formats; methods in ``Allow``.

    DRF's default also lists the fields of ``serializer_class``, which our views do not set
    (their input serializers are nested ``InputSerializer`` classes, documented in the OpenAPI
    schema): asking for it raised an AssertionError, a 500 on every write endpoint. (Set on the
    class, not in settings: DRF reads its settings while this module is being imported.)
    """

    def determine_actions(self, request: Request, view: Any) -> dict[str, Any]:
        return {}


class CompanyAPIView(generics.GenericAPIView):
    """Base of every tenant endpoint: ``self.company`` is the API key's company.

    Subclasses build querysets from ``self.company`` (``Model.objects.for_company``); the
    default manager of tenant models refuses anything else.
    """

    metadata_class = Metadata  # type: ignore[assignment]  # the stubs say instance; DRF calls it

    @property
    def company(self) -> Company:
        request: Request = self.request
        api_key = request.auth
        assert isinstance(api_key, ApiKey), "HasCompanyApiKey admits only API keys"
        return api_key.company
