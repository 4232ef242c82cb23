from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):

    dependencies = [
        ('viewer', '0004_search_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='UserPreset',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('modality', models.CharField(max_length=16)),
                ('label', models.CharField(max_length=40)),
                ('center', models.FloatField()),
                ('width', models.FloatField()),
                ('position', models.PositiveIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='window_presets', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['position', 'id'],
                'indexes': [models.Index(fields=['user', 'position'], name='viewer_user_user_id_42cfe1_idx')],
                'constraints': [models.CheckConstraint(condition=models.Q(('width__gte', 1)), name='user_preset_width_at_least_1')],
            },
        ),
    ]
