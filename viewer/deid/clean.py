"""Cleaning (action C) of free text: Clean Descriptors Option, PS3.15 E.3.5.

"Clean" keeps a descriptor but removes identifying information from it.  Crossread
removes, as whole words and ignoring case, every identifying value found in the
*original* dataset (names, IDs, institution, addresses, station, accession
number, dates): each occurrence becomes ``***`` (or fewer stars for shorter
words, so a value never grows past its VR's maximum length).  Text that
names a person or place absent from the dataset's own attributes cannot be
found this way; see ``docs/deidentification.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: Attributes whose values are identifying, besides every PN attribute.
IDENTIFYING_KEYWORDS = frozenset(
    {
        "AccessionNumber",
        "AdmissionID",
        "BranchOfService",
        "CountryOfResidence",
        "DeviceSerialNumber",
        "InstitutionAddress",
        "InstitutionName",
        "InstitutionalDepartmentName",
        "IssuerOfPatientID",
        "MedicalRecordLocator",
        "MilitaryRank",
        "OtherPatientIDs",
        "PatientAddress",
        "PatientBirthDate",
        "PatientID",
        "PatientTelephoneNumbers",
        "PerformedProcedureStepID",
        "RegionOfResidence",
        "RequestedProcedureID",
        "ResponsibleOrganization",
        "ScheduledProcedureStepID",
        "StationName",
        "StudyDate",
        "StudyID",
    }
)
_MIN_WORD = 2
_SPLIT = re.compile(r"[\^=\\,\s]+")


def identifying_terms(ds: Dataset) -> frozenset[str]:
    """Identifying words and phrases of ``ds`` at every depth, lower-cased.

    Person names give each component (family, given, ...); other values
    give the whole value and its words.
    """
    terms: set[str] = set()

    def visit(dataset: Dataset) -> None:
        for elem in dataset:
            if elem.VR == "SQ":
                for item in elem.value or ():
                    visit(item)
            elif elem.VR == "PN" or elem.keyword in IDENTIFYING_KEYWORDS:
                for value in _values(elem.value):
                    terms.update(_terms(value))

    visit(ds)
    return frozenset(t for t in terms if len(t) >= _MIN_WORD)


def _values(value: object) -> Iterable[str]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


def _terms(value: str) -> set[str]:
    value = value.strip().lower()
    words = {w for w in _SPLIT.split(value) if w}
    return words | {value.replace("^", " ").strip()} if value else words


class Cleaner:
    """Replace identifying terms in text with stars."""

    def __init__(self, terms: Iterable[str]) -> None:
        ordered = sorted(set(terms), key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in ordered) + r")(?!\w)", re.I)
            if ordered
            else None
        )

    def text(self, value: str) -> str:
        """``value`` with each identifying term replaced by at most three stars."""
        if self._pattern is None:
            return value
        return self._pattern.sub(lambda m: "*" * min(3, len(m.group(0))), value)
