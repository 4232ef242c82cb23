"""``manage.py clean_storage [--minutes N] [--dry-run]``: remove what interrupted ingests left behind.

A process killed while ingesting can leave a temporary file in the object store, or an object whose
rows never committed (nothing shows it; it only takes space). Run this at every start, before the
server (``scripts/demo.sh`` does); files younger than ``--minutes`` are left, as another process may
be using them. See :func:`viewer.ingest.clean_storage`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from viewer.ingest import clean_storage


class Command(BaseCommand):
    help = "Remove temporary files and unreferenced objects that interrupted ingests left in the object store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes", type=float, default=15.0,
            help="leave files changed less than this long ago (default 15; 0 when every server is stopped)",
        )
        parser.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["minutes"] < 0:
            raise CommandError("--minutes cannot be negative.")
        report = clean_storage(options["minutes"] * 60, dry_run=options["dry_run"])
        verb = "would remove" if options["dry_run"] else "removed"
        self.stdout.write(f"clean_storage: {verb} {report}")
