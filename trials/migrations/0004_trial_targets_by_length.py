from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('trials', '0003_trial_blinded'),
    ]

    operations = [
        migrations.AddField(
            model_name='trial',
            name='targets_by_length',
            field=models.BooleanField(default=False),
        ),
    ]
