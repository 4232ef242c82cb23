"""Who is calling: a DIMSE association's called AE title, calling AE title and address → the project
and the configured node (:class:`viewer.models.DicomNode`), or the reason to reject it.

The decision is :func:`viewer.dimse.rules.association_refusal`; what a node may then do in its project
is the gate's (:func:`viewer.access.access_node`, :func:`viewer.rules.node_may_store`).
"""

from __future__ import annotations

from dataclasses import dataclass

from viewer.dimse import rules
from viewer.models import DicomNode, Project


@dataclass(frozen=True)
class Caller:
    """An accepted association's peer: the project it called and the node it is."""

    project: Project
    node: DicomNode
    calling: str
    address: str

    @property
    def called(self) -> str:
        return project_ae_title(self.project)


@dataclass(frozen=True)
class Refusal:
    diagnostic: int
    reason: str


def project_ae_title(project: Project) -> str:
    return rules.project_ae_title(project.slug, project.ae_title)


def project_for_ae_title(called: str) -> Project | None:
    """The project whose AE title is ``called`` (configured, or the default from its slug)."""
    called = called.strip()
    if not rules.valid_ae_title(called):
        return None
    configured = Project.objects.filter(ae_title=called).first()
    if configured is not None:
        return configured
    # The default: the slug in capitals cut to 16 characters, so the slug starts with the title.
    candidates = [p for p in Project.objects.filter(ae_title="", slug__istartswith=called.lower())
                  if rules.project_ae_title(p.slug, p.ae_title) == called]
    return candidates[0] if len(candidates) == 1 else None


def _facts(node: DicomNode) -> rules.NodeFacts:
    return rules.NodeFacts("", node.ae_title, tuple(node.addresses or ()), node.kind)


def identify(called: str, calling: str, address: str) -> Caller | Refusal:
    """The caller of an association request, or why it is rejected (nothing about other projects'
    existence reaches a caller no project knows)."""
    project = project_for_ae_title(called)
    here = None
    if project is not None:
        here = next((n for n in project.dicom_nodes.all() if rules.node_matches(_facts(n), calling, address)), None)
    known_anywhere = here is not None or any(
        rules.node_matches(_facts(n), calling, address)
        for n in DicomNode.objects.filter(ae_title__in=[calling.strip(), rules.ANY_AE_TITLE])
    )
    diagnostic = rules.association_refusal(
        called_known=project is not None, caller_known_anywhere=known_anywhere, allowed_here=here is not None
    )
    if diagnostic is not None or project is None or here is None:
        reason = "called AE title not recognised" if diagnostic == rules.CALLED_AE_NOT_RECOGNISED else (
            "calling AE title or address not recognised")
        return Refusal(diagnostic or rules.CALLING_AE_NOT_RECOGNISED, reason)
    return Caller(project=project, node=here, calling=calling.strip(), address=address)


def move_destination(project: Project, ae_title: str) -> DicomNode | None:
    """The project's node named ``ae_title`` with a host and port to send to, or ``None`` (unknown)."""
    ae_title = ae_title.strip()
    if not rules.valid_ae_title(ae_title) or ae_title == rules.ANY_AE_TITLE:
        return None
    node = project.dicom_nodes.filter(ae_title=ae_title).first()
    if node is None or not node.host or not node.port:
        return None
    return node
