"""Give memberships a random public id (team pages name members by it, never by pk)."""

from django.db import migrations, models

import companies.models


def fill_public_ids(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Existing rows each need their own value: a field default is evaluated once per migration.
    Membership = apps.get_model("companies", "Membership")
    for membership in Membership.objects.filter(public_id__isnull=True).only("pk"):
        membership.public_id = companies.models.new_public_id()
        membership.save(update_fields=["public_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="public_id",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="membership",
            name="public_id",
            field=models.CharField(
                default=companies.models.new_public_id, editable=False, max_length=32
            ),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.UniqueConstraint(
                fields=("company", "public_id"), name="membership_public_id"
            ),
        ),
    ]
