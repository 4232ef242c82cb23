"""``manage.py import_dicom PATH [PATH ...] --project SLUG``: the command-line ingest path.

Symbolic links are not followed and nothing inside the object store or the upload spool is read (see
:mod:`viewer.importing`); what is not read is listed as refused, with the files that failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from viewer.importing import iter_named_files
from viewer.ingest import Outcome, ingest_files, record_upload
from viewer.models import Project


class Command(BaseCommand):
    help = "Import DICOM files, folders, zip archives and DICOMDIR media into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--project", required=True, help="slug of the project to import into")
        parser.add_argument("--quiet", action="store_true", help="print only the summary")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {options['project']!r}.") from None
        missing = [str(p) for p in options["paths"] if not p.exists() and not p.is_symlink()]
        if missing:
            raise CommandError(f"No such file or folder: {', '.join(missing)}")
        report = ingest_files(project, iter_named_files(options["paths"]))
        record_upload(None, project, report.results, via="manage.py import_dicom")
        if not options["quiet"]:
            for result in report.results:
                if result.outcome == Outcome.FAILED:
                    self.stderr.write(f"refused {result.name}: {result.reason}")
        counts = report.counts()
        self.stdout.write(
            f"{counts['stored']} stored, {counts['already_stored']} already stored, {counts['failed']} refused"
        )
