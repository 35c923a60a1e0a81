"""Base class of every tenant API endpoint (kept apart from api_base: DRF imports settings)."""

from __future__ import annotations

from rest_framework import generics
from rest_framework.request import Request

from companies.models import ApiKey, Company


class CompanyAPIView(generics.GenericAPIView):
    """Base of every tenant endpoint: ``self.company`` is the API key's company.

    Subclasses build querysets from ``self.company`` (``Model.objects.for_company``); the
    default manager of tenant models refuses anything else.
    """

    @property
    def company(self) -> Company:
        request: Request = self.request
        api_key = request.auth
        assert isinstance(api_key, ApiKey), "HasCompanyApiKey admits only API keys"
        return api_key.company
