from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_views import CompanyAPIView
from companies.selectors import members_list
from companies.serializers import CompanyOutput, MemberOutput


class CompanyApi(CompanyAPIView):
    serializer_class = CompanyOutput

    @extend_schema(summary="The API key's company", operation_id="company_retrieve")
    def get(self, request: Request) -> Response:
        return Response(CompanyOutput(self.company).data)


class MemberListApi(CompanyAPIView):
    serializer_class = MemberOutput

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return members_list(company=self.company)

    @extend_schema(summary="Members of the company", operation_id="members_list")
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MemberOutput(page, many=True).data)
