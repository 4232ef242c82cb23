"""``manage.py load_demo``: the demo project, demo users and real demo studies.

The passwords are for a local demo only and are printed on the console; never load the demo on a
server that holds real data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from demo import corpus
from viewer.ingest import ingest_files
from viewer.importing import iter_named_files
from viewer.models import DicomNode, Membership, NodeKind, Project, Role

DEMO_USERS = {
    "organizer": (Role.ORGANIZER, "demo-organizer-pass"),
    "reader1": (Role.READER, "demo-reader1-pass"),
    "reader2": (Role.READER, "demo-reader2-pass"),
}

#: Real files from the PyPI corpora: (source, path) with what each shows.
DEMO_FILES = [
    ("pydicom-data", "RG1_UNCI.dcm"),  # CR chest 1955x1841, MONOCHROME1
    ("deid-data", "animals/cat.dcm"),  # DX 2614x3072
    ("pydicom-data", "MR2_J2KR.dcm"),  # MR 1024x1024, JPEG 2000 lossless
    ("pydicom-data", "693_J2KR.dcm"),  # CT 512x512, JPEG 2000 lossless
    ("pydicom", "CT_small.dcm"),  # CT 128x128
    ("pydicom-data", "emri_small_RLE.dcm"),  # MR multi-frame, RLE
    ("pydicom", "examples_palette.dcm"),  # US, PALETTE COLOR
    ("pydicom", "examples_ybr_color.dcm"),  # US cine, JPEG YBR_FULL_422
]


class Command(BaseCommand):
    help = "Create the demo project 'demo', the demo users and import real demo studies (demo passwords!)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-studies", action="store_true", help="users and project only")
        parser.add_argument("--slices", type=int, default=120, help="slices per phantom CT study")

    def handle(self, *args: Any, **options: Any) -> None:
        project = self._project_and_users()
        if options["no_studies"]:
            return
        data = Path(settings.DATA_DIR)
        paths = self._phantom(data / "phantom", options["slices"]) + self._slide(data / "slide")
        paths += [corpus.file(s, p) for s, p in DEMO_FILES]
        report = ingest_files(project, iter_named_files(paths))
        counts = report.counts()
        for failure in report.failed:
            self.stderr.write(f"refused {failure.name}: {failure.reason}")
        self.stdout.write(
            f"Demo studies: {counts['stored']} instances stored, {counts['already_stored']} already there, "
            f"{counts['failed']} refused; {project.studies.count()} studies in project 'demo'."
        )

    @transaction.atomic
    def _project_and_users(self) -> Project:
        project, _ = Project.objects.get_or_create(
            slug="demo",
            defaults={
                "name": "Crossread demo",
                "description": "Real DICOM files from public test corpora and a synthetic CT phantom.",
            },
        )
        User = get_user_model()
        self.stdout.write("Demo users (passwords for this local demo only):")
        for username, (role, password) in DEMO_USERS.items():
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.save()
            Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
            self.stdout.write(f"  {username:<10} {password:<22} {role}")
        # DIMSE (manage.py dicom_listener): any AE title calling DEMO from this machine may store and
        # query/retrieve, as a reader.
        DicomNode.objects.update_or_create(
            project=project, ae_title="*", defaults={"addresses": ["127.0.0.1"], "kind": NodeKind.PEER}
        )
        self.stdout.write("DICOM: any AE title from 127.0.0.1 may call DEMO on port 11112 (dicom_listener).")
        return project

    def _slide(self, folder: Path) -> list[Path]:
        """A synthetic whole-slide pyramid built from wsidicom-data's real encoded test tile."""
        from demo.slide import write_synthetic_slide

        if not (folder / "slide_level0.dcm").exists():
            write_synthetic_slide(folder, texture=corpus.source_dirs()["wsidicom-data"] / "test_tile.png")
        return sorted(folder.glob("*.dcm"))

    def _phantom(self, folder: Path, slices: int) -> list[Path]:
        from demo.phantom import write_phantom_studies

        if not (folder / "phantom.json").exists():
            self.stdout.write(f"Writing the synthetic phantom CT ({slices} slices per study) to {folder} ...")
            write_phantom_studies(folder, slices=slices)
        return sorted(folder.rglob("*.dcm"))  # not phantom.json, the ground truth beside them
