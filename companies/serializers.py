from __future__ import annotations

from rest_framework import serializers

from companies.models import Company, Membership


class CompanyOutput(serializers.ModelSerializer):
    class Meta:
        model = Company
        fields = [
            "slug",
            "name",
            "industry",
            "country",
            "time_zone",
            "default_language",
            "sender_name",
            "reply_to",
            "created_at",
        ]
        read_only_fields = fields


class MemberOutput(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["email", "name", "role", "created_at"]
        read_only_fields = fields
