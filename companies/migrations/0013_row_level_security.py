# Row-level security on every table with a company_id, from the models' metadata
# (companies.rls). It depends on the newest migration of every app so that every tenant
# table exists; a later migration adding a tenant table ends with another RowLevelSecurity().

from django.db import migrations

from companies.rls import RowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0012_company_require_mfa"),
        ("privacy", "0001_personal_data_requests"),
        ("audit", "0001_audit_entry"),
        ("sso", "0001_sso_connections_and_domains"),
        ("notifications", "0006_webhookendpoint_payload_format"),
        ("surveys", "0012_autopilot"),
        ("responses", "0009_response_channel_web_widget"),
        ("dashboards", "0007_property_rollups"),
        ("delighted_compat", "0002_api_key_survey"),
        ("widget", "0001_widget_settings_and_views"),
    ]

    operations = [RowLevelSecurity()]
