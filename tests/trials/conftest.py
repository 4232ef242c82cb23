"""A trial on the phantom: two readers, an adjudicator, one subject (baseline + follow-up).

Only the slices that hold the phantom's lesions are ingested (fast); the phantom is written once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from annotations import services as annotation_services
from tests.factories.models import create_user, token_for
from trials import services
from demo import phantom
from viewer.ingest import ingest_bytes
from viewer.models import Membership, Role

SLICES, SIZE = 120, 128


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("trial-phantom")
    phantom.write_phantom_studies(out, slices=SLICES, size=SIZE, seed=0)
    truth = json.loads((out / "phantom.json").read_text())["studies"]
    files: dict[str, list[bytes]] = {}
    for tp in ("baseline", "followup"):
        wanted = {lesion["instance_number"] for lesion in truth[tp]["lesions"]}
        files[tp] = [(out / tp / f"CT_{n:04d}.dcm").read_bytes() for n in sorted(wanted)]
    return {"truth": truth, "files": files}


class Trial:
    """Handles for one test: users, clients, the subject, and shortcuts over the services."""

    def __init__(self, team: dict[str, Any], truth: dict[str, Any]) -> None:
        self.project = team["project"]
        self.organizer, self.reader1, self.viewer = team["organizer"], team["reader"], team["viewer"]
        self.outsider = team["outsider"]
        self.reader2 = create_user("reader2")
        self.adjudicator = create_user("adjudicator")
        for user in (self.reader2, self.adjudicator):
            Membership.objects.create(project=self.project, user=user, role=Role.READER)
        self.truth = truth

    def client(self, user: Any) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return client

    def access(self, user: Any) -> services.TrialAccess:
        return services.access_trial(user, self.project.slug)

    def lesion_truth(self, timepoint: str, lesion_id: str) -> dict[str, Any]:
        return next(x for x in self.truth[timepoint]["lesions"] if x["id"] == lesion_id)

    def measure(self, user: Any, timepoint: str, lesion_id: str, scale: float = 1.0) -> int:
        """A bidirectional on the lesion's centre slice, optionally shrunk about its centre."""
        lesion = self.lesion_truth(timepoint, lesion_id)
        pts = [*lesion["long_axis_endpoints_px"], *lesion["short_axis_endpoints_px"]]
        cx, cy = (pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2
        pts = [[cx + (x - cx) * scale, cy + (y - cy) * scale] for x, y in pts]
        annotation = annotation_services.create_annotation(
            user, self.project, instance_uid=lesion["sop_instance_uid"], kind="bidirectional", points=pts,
            label=lesion_id)
        return annotation.pk

    def read_of(self, user: Any) -> Any:
        return services.visible_reads(self.access(user)).get(reader=user)

    def timepoints(self, read: Any) -> list[Any]:
        return list(read.subject.timepoints.order_by("order"))

    def do_read(self, user: Any, *, new_lesion: bool = True, t1_scale: float = 1.0) -> Any:
        """Read the phantom as docs/phantom.md says (PD through N1), or without N1 (SD)."""
        access = self.access(user)
        read = self.read_of(user)
        base, follow = self.timepoints(read)
        organs = {"T1": ("liver", False), "T2": ("lung", False), "T3": ("mediastinum", True)}
        for lid, (organ, nodal) in organs.items():
            lesion = services.add_lesion(access, read, role="target", organ=organ, nodal=nodal)
            for tp, name in ((base, "baseline"), (follow, "followup")):
                scale = t1_scale if (lid == "T1" and name == "followup") else 1.0
                services.set_assessment(access, read, lesion=lesion.pk, timepoint=tp.pk, status="measured",
                                        annotation=self.measure(user, name, lid, scale))
        nt = services.add_lesion(access, read, role="non_target", organ="left lung")
        services.set_assessment(access, read, lesion=nt.pk, timepoint=base.pk, status="present")
        services.set_assessment(access, read, lesion=nt.pk, timepoint=follow.pk, status="absent")
        if new_lesion:
            new = services.add_lesion(access, read, role="new", organ="liver")
            services.set_assessment(access, read, lesion=new.pk, timepoint=follow.pk, status="present",
                                    annotation=self.measure(user, "followup", "N1"))
        return read


def make_trial(team: dict[str, Any], phantom_files: dict[str, Any], **settings: Any) -> Trial:
    """The phantom trial, created with ``settings`` (e.g. ``targets_by_length=True``)."""
    handles = Trial(team, phantom_files["truth"])
    for tp in ("baseline", "followup"):
        for data in phantom_files["files"][tp]:
            assert ingest_bytes(handles.project, data).ok
    services.create_trial(handles.organizer, handles.project.slug, name="Phantom trial",
                          adjudicators=["adjudicator"], **settings)
    access = handles.access(handles.organizer)
    services.add_subject(access, label="S001", patient_id="PHANTOM-001")
    services.assign_readers(access, readers=["reader", "reader2"])
    return handles


@pytest.fixture
def trial(team: dict[str, Any], phantom_files: dict[str, Any]) -> Trial:
    return make_trial(team, phantom_files)


@pytest.fixture
def length_trial(team: dict[str, Any], phantom_files: dict[str, Any]) -> Trial:
    """The phantom trial where a non-nodal target may be measured with a length."""
    return make_trial(team, phantom_files, targets_by_length=True)
