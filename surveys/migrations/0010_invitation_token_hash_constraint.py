"""token_hash unique by a constraint: one index, not the unique one and a LIKE one."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0009_contact_import_queued_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="invitation",
            name="token_hash",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AddConstraint(
            model_name="invitation",
            constraint=models.UniqueConstraint(
                fields=("token_hash",), name="invitation_token_hash"
            ),
        ),
    ]
