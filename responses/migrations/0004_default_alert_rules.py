"""Companies created before alert rules existed get the default rule a new company gets."""

from typing import Any

from django.db import migrations


def create_default_rules(apps: Any, schema_editor: Any) -> None:
    Company = apps.get_model("companies", "Company")
    AlertRule = apps.get_model("responses", "AlertRule")
    have = set(AlertRule.objects.filter(is_default=True).values_list("company_id", flat=True))
    AlertRule.objects.bulk_create(
        [
            AlertRule(
                company_id=company_id,
                name="Every detractor",
                category="detractor",
                email_roles=["agent"],
                create_followup=True,
                is_default=True,
            )
            for company_id in Company.objects.values_list("pk", flat=True)
            if company_id not in have
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("responses", "0003_alerts_followups")]

    operations = [migrations.RunPython(create_default_rules, migrations.RunPython.noop)]
