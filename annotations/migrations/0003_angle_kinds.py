from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0002_annotation_plane'),
    ]

    operations = [
        migrations.AlterField(
            model_name='annotation',
            name='kind',
            field=models.CharField(choices=[('length', 'Length'), ('bidirectional', 'Bidirectional'), ('ellipse', 'Ellipse ROI'), ('freehand', 'Freehand ROI'), ('arrow', 'Arrow'), ('point', 'Point'), ('angle', 'Angle'), ('cobb', 'Cobb angle')], max_length=16),
        ),
    ]
