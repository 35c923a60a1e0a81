"""provider_message_id: one index, not a plain one and a LIKE one."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0007_user_time_zone"),
        ("notifications", "0004_delivery_call_ref"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="provider_message_id",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(fields=["provider_message_id"], name="delivery_provider_message"),
        ),
    ]
