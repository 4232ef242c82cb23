"""``manage.py fill_index --project demo --instances N``: synthetic rows straight into the index.

For measuring searches at scale (``bench/ingest.py --index-only``): see :mod:`demo.scale`. The
instances are indexed, not stored: they are found by searches but have no file to retrieve.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from demo.scale import fill_index
from viewer.models import Project

#: A bound on one run (a million instances is the documented size; more is a mistake of a digit).
MAX_INSTANCES = 10_000_000


class Command(BaseCommand):
    help = "Index N synthetic instances (no files) into a project, in bulk, then VACUUM ANALYZE (benchmarks only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--instances", type=int, required=True, help="instances to index (10 per study)")

    def handle(self, *args: Any, **options: Any) -> None:
        count = options["instances"]
        if not 0 < count <= MAX_INSTANCES:
            raise CommandError(f"--instances must be between 1 and {MAX_INSTANCES}.")
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"No project {options['project']!r}.") from None
        start = time.perf_counter()
        studies = fill_index(project, count)
        filled = time.perf_counter() - start
        with connection.cursor() as cursor:
            # As autovacuum would after a bulk load: statistics for the planner, and (PostgreSQL) the
            # visibility map that lets index-only scans (counts by series) skip the table.
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
        self.stdout.write(
            f"Indexed {count} instances ({studies} studies) in {filled:.1f} s; "
            f"VACUUM ANALYZE {time.perf_counter() - start - filled:.1f} s."
        )
