"""``manage.py dicom_node``: a project's DICOM (DIMSE) configuration.

    dicom_node list [--project SLUG]
    dicom_node add SLUG AE_TITLE --address 10.0.0.5 [--address 10.1.0.0/16] --kind sender|query|peer
                   [--host HOST --port PORT]      (host and port: a C-MOVE destination)
    dicom_node remove SLUG AE_TITLE
    dicom_node ae-title SLUG [AE_TITLE]           (the called AE title of the project; none: the default)

Each change is audited as a membership change (a node is a member with a fixed role).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction

from audit.models import Action
from audit.services import record
from viewer.dimse import rules
from viewer.dimse.nodes import project_ae_title, project_for_ae_title
from viewer.models import DicomNode, NodeKind, Project


class Command(BaseCommand):
    help = "List, add or remove a project's DICOM nodes, or set its AE title."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list")
        listing.add_argument("--project")
        add = sub.add_parser("add")
        add.add_argument("project")
        add.add_argument("ae_title", help="the node's calling AE title, or * for any from its addresses")
        add.add_argument("--address", action="append", required=True, help="an address or CIDR network")
        add.add_argument("--kind", choices=[k.value for k in NodeKind], default=NodeKind.SENDER)
        add.add_argument("--host", default="")
        add.add_argument("--port", type=int)
        remove = sub.add_parser("remove")
        remove.add_argument("project")
        remove.add_argument("ae_title")
        title = sub.add_parser("ae-title")
        title.add_argument("project")
        title.add_argument("ae_title", nargs="?", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "_" + options["action"].replace("-", "_"))(options)

    def _project(self, slug: str) -> Project:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project {slug!r}.")
        return project

    def _list(self, options: dict[str, Any]) -> None:
        projects = Project.objects.all()
        if options["project"]:
            projects = projects.filter(slug=options["project"])
        for project in projects:
            self.stdout.write(f"{project.slug}: AE title {project_ae_title(project)}")
            for node in project.dicom_nodes.order_by("ae_title"):
                destination = f"  move to {node.host}:{node.port}" if node.host and node.port else ""
                self.stdout.write(f"  {node.ae_title:<16} {node.kind:<7} from {', '.join(node.addresses)}{destination}")

    def _add(self, options: dict[str, Any]) -> None:
        project = self._project(options["project"])
        ae_title = options["ae_title"].strip()
        if ae_title != rules.ANY_AE_TITLE and not rules.valid_ae_title(ae_title):
            raise CommandError("An AE title is 1 to 16 characters, no backslash or control characters.")
        bad = [a for a in options["address"] if not rules.valid_network(a)]
        if bad:
            raise CommandError(f"Not an address or CIDR network: {', '.join(bad)}")
        if bool(options["host"]) != bool(options["port"]) or (options["port"] and not 0 < options["port"] < 65536):
            raise CommandError("A move destination needs both --host and --port (1-65535).")
        with transaction.atomic():
            node, created = DicomNode.objects.update_or_create(
                project=project, ae_title=ae_title,
                defaults={"addresses": options["address"], "kind": options["kind"], "host": options["host"],
                          "port": options["port"]},
            )
            record(Action.MEMBERSHIP_CHANGED, actor_name="manage.py", project=project, object_type="dicom.node",
                   object_id=ae_title, kind=node.kind, addresses=node.addresses, created=created,
                   in_transaction=True)
        self.stdout.write(f"{'Added' if created else 'Changed'} {node}.")

    def _remove(self, options: dict[str, Any]) -> None:
        project = self._project(options["project"])
        with transaction.atomic():
            deleted, _ = project.dicom_nodes.filter(ae_title=options["ae_title"].strip()).delete()
            if not deleted:
                raise CommandError("No such node.")
            record(Action.MEMBERSHIP_CHANGED, actor_name="manage.py", project=project, object_type="dicom.node",
                   object_id=options["ae_title"].strip(), removed=True, in_transaction=True)
        self.stdout.write("Removed.")

    def _ae_title(self, options: dict[str, Any]) -> None:
        project = self._project(options["project"])
        ae_title = options["ae_title"].strip()
        if ae_title and (not rules.valid_ae_title(ae_title) or ae_title == rules.ANY_AE_TITLE):
            raise CommandError("An AE title is 1 to 16 characters, no backslash or control characters.")
        holder = project_for_ae_title(ae_title) if ae_title else None
        if holder is not None and holder != project:
            raise CommandError(f"Project {holder.slug} is reached by the AE title {ae_title}.")
        project.ae_title = ae_title
        try:
            with transaction.atomic():
                project.save(update_fields=["ae_title"])
        except IntegrityError:
            raise CommandError(f"Another project has the AE title {ae_title}.") from None
        self.stdout.write(f"{project.slug}: AE title {project_ae_title(project)}")
