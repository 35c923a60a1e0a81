"""Industry: travel (airlines, car rental) apart from hospitality (restaurants, cafés, hotels)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('companies', '0007_user_time_zone'),
    ]

    operations = [
        migrations.AlterField(
            model_name='company',
            name='industry',
            field=models.CharField(choices=[('retail', 'Retail'), ('ecommerce', 'E-commerce'), ('software', 'Software & SaaS'), ('telecom', 'Telecom & internet'), ('banking', 'Banking & payments'), ('insurance', 'Insurance'), ('healthcare', 'Healthcare'), ('education', 'Education'), ('hospitality', 'Hospitality (restaurants, cafés, hotels)'), ('travel', 'Travel (airlines, car rental)'), ('transport', 'Transport & logistics'), ('manufacturing', 'Manufacturing'), ('b2b_services', 'B2B services'), ('public_sector', 'Public sector'), ('other', 'Other')], default='other', max_length=32, verbose_name='industry'),
        ),
    ]
