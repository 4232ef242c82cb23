"""Blinded reading: which studies a blinded reader reaches, and what of them they may read. Pure: no Django.

In a blinded trial a reader must not learn whose images they read nor when they were taken: the
trial pages show a pseudonymous subject label and days from baseline. The archive must not tell
them either. For such a reader (facts loaded once per access by the gate, :mod:`viewer.access`,
from loaders the trials app registers):

- the blinded trials' studies are **hidden**: no listing (QIDO-RS, the worklist, the viewer's list of
  the patient's other studies) shows them;
- the studies of the subjects they read are **masked**: reachable by UID for reading (metadata,
  frames, rendered images, thumbnails, annotations), with the patient's name and ID replaced by the
  subject's label, the study description by the time point's label, and every date, time, person
  name, institution and private element left out (:func:`mask_metadata`); the stored files
  themselves, whose bytes carry all of it, are not handed out (:func:`serves_files`).

Organizers and the trial's adjudicators are not blinded. Members who read no blinded trial are not
either (no facts are loaded for them beyond one query).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Mask:
    """What a blinded reader is told of a study instead of the truth."""

    patient: str  # the subject's label ("S001"), for PatientName and PatientID
    description: str  # the time point's label ("baseline", "follow-up 1"), for StudyDescription


@dataclass(frozen=True)
class Blinding:
    """A member's blinding in a project: the study ids hidden from them, and those of the hidden
    studies they read, each with its mask."""

    hidden: frozenset[int]
    masks: Mapping[int, Mask] = field(default_factory=dict)

    def lists(self, study_id: int) -> bool:
        """Is the study listed (searches, worklists, related studies)?"""
        return study_id not in self.hidden

    def reaches(self, study_id: int) -> bool:
        """May the member reach the study by its UID?"""
        return study_id not in self.hidden or study_id in self.masks

    @property
    def unreachable(self) -> frozenset[int]:
        return frozenset(self.hidden - self.masks.keys())

    def mask(self, study_id: int) -> Mask | None:
        return self.masks.get(study_id)

    def same_subject(self, study_id: int) -> frozenset[int]:
        """The masked studies shown as the same subject as ``study_id`` (none if it is not masked)."""
        mask = self.masks.get(study_id)
        if mask is None:
            return frozenset()
        return frozenset(pk for pk, other in self.masks.items() if other.patient == mask.patient)


def serves_files(blinding: Blinding | None, study_id: int) -> bool:
    """May the stored files (and their bulk data) of the study be handed out as they are?"""
    return blinding is None or blinding.mask(study_id) is None


#: Value representations whose every element is left out of masked metadata: dates, times, ages,
#: person names (only PatientName comes back, as the subject's label).
DROPPED_VRS = frozenset({"DA", "DT", "TM", "AS", "PN"})

#: Elements left out of masked metadata whatever their VR: identifiers of the patient, the visit and
#: the request, institutions and devices, free-text comments and descriptions of the study.
DROPPED_TAGS = frozenset({
    "00080050",  # AccessionNumber
    "00080080", "00080081", "00081040", "00081010", "00081048", "00081060", "00081070",  # institution, station, physicians
    "00081030", "00081032",  # StudyDescription (replaced), ProcedureCodeSequence
    "00081080", "00081084",  # admitting diagnoses
    "00080090", "00080092", "00080094", "00080096",  # referring physician
    "00101000", "00101001", "00101002", "00101040", "00101060", "00101090",  # other IDs, names, address, mother's name
    "00100021", "00100022", "00100024", "00100026", "00100027", "00100028",  # issuer of patient ID and friends
    "00100030", "00100032", "00100033", "00100034", "00100035", "00100050", "00100101", "00100102",
    "00101005", "00101010", "00101020", "00101030", "00102150", "00102152", "00102154", "00102160",
    "00102180", "001021B0", "001021D0", "001021F0", "00104000", "00380010", "00380300", "00380400",
    "00200010",  # StudyID
    "00321032", "00321033", "00321060", "00324000", "00400254", "00400253", "00400275", "00401001",
    "00402400", "00404000", "00402016", "00402017", "00081111", "00081110", "00081250", "00321064",
    "00181000", "00181030", "00204000",  # device serial, protocol name, image comments
    "0008103E", "00400254", "00321060", "00081090",  # free text: series, step and procedure descriptions, model
})


def mask_metadata(metadata: Mapping[str, Any], mask: Mask) -> dict[str, Any]:
    """DICOM JSON ``metadata`` (one instance's, or a study's attributes) as a blinded reader sees it:
    the elements of :data:`DROPPED_VRS` and :data:`DROPPED_TAGS` and every private element left out
    (in sequences too), PatientName and PatientID the subject's label, StudyDescription the time
    point's label."""
    masked = _masked(metadata)
    masked["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": mask.patient}]}
    masked["00100020"] = {"vr": "LO", "Value": [mask.patient]}
    masked["00081030"] = {"vr": "LO", "Value": [mask.description]}
    return dict(sorted(masked.items()))


def _masked(metadata: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for tag, element in metadata.items():
        if tag in DROPPED_TAGS or _private(tag) or not isinstance(element, dict):
            continue
        if element.get("vr") in DROPPED_VRS:
            continue
        if element.get("vr") == "SQ":
            items = element.get("Value") or []
            element = {**element, "Value": [_masked(item) for item in items if isinstance(item, dict)]}
        kept[tag] = element
    return kept


def _private(tag: str) -> bool:
    try:
        return int(tag[:4], 16) % 2 == 1
    except ValueError:
        return True


def mask_outline(outline: Mapping[str, Any], mask: Mask) -> dict[str, Any]:
    """The viewer page's outline of a study (``viewer.pages.study_outline``), masked likewise."""
    return {**outline, "patientName": mask.patient, "patientId": mask.patient, "studyDate": "",
            "studyDescription": mask.description,
            "series": [{**series, "description": ""} for series in outline.get("series", [])],
            "documents": [{**series, "description": ""} for series in outline.get("documents", [])]}
