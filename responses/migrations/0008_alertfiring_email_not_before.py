"""Alert emails on a score alone wait for the comment: when they are due."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('responses', '0007_owed_effects'),
    ]

    operations = [
        migrations.AddField(
            model_name='alertfiring',
            name='email_not_before',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
