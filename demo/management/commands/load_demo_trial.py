"""``manage.py load_demo_trial``: the demo trial on the demo project (run after ``load_demo``).

The phantom's baseline and follow-up (PatientID PHANTOM-001) become subject S001, read blindly by
reader1 and reader2; the organizer adjudicates. Thin: every write goes through trials.services.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crossread.errors import DomainError
from trials import services
from trials.models import Subject, Trial
from viewer.models import Membership, Project, Role


class Command(BaseCommand):
    help = "Create the demo RECIST trial on project 'demo' (subject S001 = the phantom; reader1 and reader2 read)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", default="demo")
        parser.add_argument("--adjudicator", default="organizer")
        parser.add_argument("--readers", nargs=2, default=["reader1", "reader2"])
        parser.add_argument("--targets-by-length", action="store_true",
                            help="non-nodal targets may be measured with a length (the trial's setting)")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}: run load_demo first.")
        organizer = Membership.objects.filter(project=project, role=Role.ORGANIZER).select_related("user").first()
        if organizer is None:
            raise CommandError("The project has no organizer.")
        user = organizer.user
        adjudicator = get_user_model().objects.filter(username=options["adjudicator"]).first()
        try:
            if not Trial.objects.filter(project=project).exists():
                services.create_trial(user, project.slug, name="Demo RECIST trial",
                                      targets_by_length=options["targets_by_length"],
                                      adjudicators=[adjudicator.get_username()] if adjudicator else [])
            access = services.access_trial(user, project.slug)
            if not Subject.objects.filter(trial=access.trial, patient_id="PHANTOM-001").exists():
                services.add_subject(access, label="S001", patient_id="PHANTOM-001")
            created = services.assign_readers(access, readers=list(options["readers"]))
        except DomainError as error:
            raise CommandError(f"{error.detail} {error.data or ''}".strip()) from None
        self.stdout.write(f"Demo trial ready on '{project.slug}': {access.trial.subjects.count()} subject(s), "
                          f"{len(created)} new read(s). Open /projects/{project.slug}/trial/")
