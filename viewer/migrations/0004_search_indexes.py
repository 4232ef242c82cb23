# Indexes that match the QIDO-RS searches (docs/dicomweb.md, "Search at scale").

from django.db import migrations, models

#: PostgreSQL only: person names match case-insensitively, exactly (``UPPER(x) = UPPER(y)``) or by a
#: prefix (``UPPER(x) LIKE 'Y%'``); an index on the same expression, with pattern operators, serves
#: both whatever the database's collation. SQLite has no such index (its LIKE ignores case by itself).
PATIENT_NAME = (
    'CREATE INDEX IF NOT EXISTS study_patient_name_upper ON viewer_study '
    '(project_id, UPPER(patient_name::text) text_pattern_ops)'
)


def create_name_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PATIENT_NAME)


def drop_name_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS study_patient_name_upper")


class Migration(migrations.Migration):

    dependencies = [
        ('viewer', '0003_quarantine_index'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='instance',
            index=models.Index(fields=['project', 'series', 'quarantined'], name='instances_of_series'),
        ),
        migrations.AddIndex(
            model_name='series',
            index=models.Index(fields=['project', 'study'], name='series_of_study'),
        ),
        migrations.RunPython(create_name_index, drop_name_index),
    ]
