from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="plane",
            field=models.JSONField(blank=True, default=None, null=True),
        ),
    ]
