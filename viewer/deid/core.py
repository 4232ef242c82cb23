"""De-identify one dataset: PS3.15 Annex E Basic Profile plus options.

:func:`deidentify` copies the dataset, applies the action of PS3.15 Table E.1-1
to every attribute at every depth of nested sequences, replaces Patient ID
and Patient's Name with the project pseudonym, records what was done
(PS3.15 E.1.1 item 6) and rebuilds the File Meta Information (E.1.1 item 7).
Pixel Data is never touched.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from viewer.deid.burned_in import burned_in_text_reasons
from viewer.deid.clean import Cleaner, identifying_terms
from viewer.deid.dates import shift_da, shift_days, shift_dt
from viewer.deid.profile import Option, Profile
from viewer.deid.pseudonyms import Pseudonymizer, resolve_pseudonym
from viewer.deid.table import IodTypes, Row, load_iod_types, load_safe_private, load_table
from viewer.deid.uids import UidMapper, check_secret
from viewer.deid.values import DUMMY_DATE, dummy_for

#: Implementation Class UID of the File Meta Information written here (a fixed 2.25 UID).
IMPLEMENTATION_CLASS_UID = "2.25.152336318199683759004596578087586407545"
IMPLEMENTATION_VERSION_NAME = "CROSSREAD_DEID"

#: Unlisted UI attributes that name a class, syntax or scheme rather than an instance.
_STRUCTURAL_UID_KEYWORDS = frozenset(
    {
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "ContextUID",
        "MappingResourceUID",
        "PrivateInformationCreatorUID",
        "SegmentationTemplateUID",
    }
)
_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_FREE_TEXT_VRS = frozenset({"LT", "PN", "ST", "UC", "UT"})
_OVERLAY_GROUPS = frozenset(range(0x6000, 0x6020, 2))
#: Media Storage Directory Storage: a DICOMDIR holds byte offsets, not an instance.
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class DeidResult:
    """Outcome of :func:`deidentify`.

    Attributes
    ----------
    dataset : Dataset
        The de-identified copy, with new File Meta Information.
    uid_map : Mapping[str, str]
        Every original UID replaced in this dataset -> its new UID.
    burned_in_text_reasons : tuple of str
        Why the pixels may carry burned-in text (see :mod:`viewer.deid.burned_in`).
    actions_applied : Mapping[str, int]
        How many elements each operation touched: ``remove``, ``empty``,
        ``dummy``, ``replace-uid``, ``keep``, ``clean``, ``shift-date``,
        ``keep-private``, ``remove-private``, ``pseudonym``.
    """

    dataset: Dataset
    uid_map: Mapping[str, str]
    burned_in_text_reasons: tuple[str, ...]
    actions_applied: Mapping[str, int]

    @property
    def burned_in_text_risk(self) -> bool:
        """True when the image should be quarantined for a look at its pixels."""
        return bool(self.burned_in_text_reasons)


def deidentify(
    ds: Dataset,
    profile: Profile,
    *,
    secret: bytes,
    pseudonym: Pseudonymizer | None = None,
) -> DeidResult:
    """De-identify ``ds`` by the PS3.15 Basic Application Level Confidentiality Profile.

    Parameters
    ----------
    ds : Dataset
        The original; it is not modified.
    profile : Profile
        Basic Profile plus options (PS3.15 E.3).
    secret : bytes
        The project secret: keys UIDs, the date shift and the default pseudonym.
    pseudonym : callable or mapping, optional
        Original Patient ID -> pseudonym; default :func:`default_pseudonym`.

    Returns
    -------
    DeidResult

    Raises
    ------
    ValueError
        If ``secret`` is empty, the pseudonym is missing or invalid, or
        ``ds`` is a DICOMDIR.
    """
    check_secret(secret)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPClassUID") == _MEDIA_STORAGE_DIRECTORY:
        raise ValueError("a DICOMDIR is not an instance: de-identify the files it references")
    patient_id = str(ds.get("PatientID", "") or "").strip()
    patient_pseudonym = resolve_pseudonym(patient_id, secret, pseudonym)
    out = copy.deepcopy(ds)
    out.preamble = None
    out.filename = None
    uids = UidMapper(secret)
    walker = _Walker(
        profile=profile,
        iod_types=load_iod_types(),
        sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
        uids=uids,
        days=shift_days(secret, patient_id)
        if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options
        else None,
        cleaner=Cleaner(identifying_terms(ds)),
    )
    walker.dataset(out)
    out.PatientID = patient_pseudonym
    out.PatientName = patient_pseudonym
    walker.counts["pseudonym"] += 2
    _record_method(out, profile, modified_dates=walker.days is not None)
    out.file_meta = _file_meta(ds, out, uids)
    return DeidResult(
        dataset=out,
        uid_map=dict(uids.mapping),
        burned_in_text_reasons=burned_in_text_reasons(ds),
        actions_applied=dict(walker.counts),
    )


class _Walker:
    """Apply the resolved action of Table E.1-1 to each element, recursing into sequences."""

    def __init__(
        self,
        *,
        profile: Profile,
        iod_types: IodTypes,
        sop_class_uid: str,
        uids: UidMapper,
        days: int | None,
        cleaner: Cleaner,
    ) -> None:
        self.profile = profile
        self.table = load_table()
        self.iod_types = iod_types
        self.sop_class_uid = sop_class_uid
        self.uids = uids
        self.days = days
        self.cleaner = cleaner
        self.counts: Counter[str] = Counter()

    def dataset(self, ds: Dataset, *, nested: bool = False, dummy: bool = False) -> None:
        """De-identify ``ds`` (the copy, or an item of one of its sequences) in place.

        ``dummy`` is set inside a sequence whose action is D (e.g. Content
        Sequence, Graphic Annotation Sequence): there unlisted free text is
        replaced by dummies too, see :meth:`_unlisted_action`.
        """
        safe_private = self._safe_private_tags(ds)
        overlays = {tag.group for tag in ds.keys() if tag.group in _OVERLAY_GROUPS and tag.element == 0x3000}
        for elem in list(ds):
            tag = elem.tag
            if tag.element == 0 and tag.group != 2:
                # Group lengths (retired) would be wrong after removals.
                del ds[tag]
                self.counts["remove"] += 1
            elif tag.is_private:
                self._private(ds, elem, safe_private)
            else:
                action = self._action(self.table.row_for(tag), elem, dummy=dummy)
                self._apply(ds, elem, self._resolve(action, tag, nested=nested), dummy=dummy)
        self._drop_orphaned_overlays(ds, overlays)

    def _drop_orphaned_overlays(self, ds: Dataset, overlays: set[int]) -> None:
        """Remove the rest of an Overlay Plane (60xx) whose Overlay Data was removed.

        Overlay Data is type 1 in the Overlay Plane Module (PS3.3 C.9.2), so
        the module must go as a whole.
        """
        for group in overlays:
            if (group, 0x3000) in ds:
                continue
            for tag in [t for t in ds.keys() if t.group == group]:
                del ds[tag]
                self.counts["remove"] += 1

    # -- choosing the action ------------------------------------------------

    def _action(self, row: Row | None, elem: DataElement, *, dummy: bool) -> str:
        """Action code for ``elem``: an enabled option's code overrides the basic one.

        When two enabled options list the attribute, retaining (K) wins over
        cleaning (C).  Attributes the table does not list follow
        :meth:`_unlisted_action`.
        """
        if row is None:
            return self._unlisted_action(elem, dummy=dummy)
        codes = [row.actions[c] for c in self.profile.columns if c in row.actions]
        if "K" in codes:
            return "K"
        return codes[0] if codes else row.actions["basic"]

    def _unlisted_action(self, elem: DataElement, *, dummy: bool) -> str:
        """Dates, times, UIDs and dummied free text the table does not list (E.1.1 Note 4).

        Dates (DA, DT) are shifted under the modified-dates option and
        otherwise treated as ``X/Z/D``; times (TM) are kept under that option
        (the shift is whole days) and otherwise ``X/Z/D``.  UIDs are replaced
        (U) unless the attribute names a class, transfer syntax or scheme.
        Inside a sequence whose action is D, free text (ST, LT, UT, UC, PN,
        e.g. Text Value of an SR content item) is replaced by a dummy (D),
        while codes and numbers keep the structure valid.  Everything else
        is kept.
        """
        vr = elem.VR
        if dummy and vr in _FREE_TEXT_VRS:
            return "D"
        if vr in ("DA", "DT"):
            return "C" if self.days is not None else "X/Z/D"
        if vr == "TM":
            return "K" if self.days is not None else "X/Z/D"
        if vr == "UI":
            keyword = elem.keyword
            structural = (
                "Class" in keyword or "TransferSyntax" in keyword or keyword in _STRUCTURAL_UID_KEYWORDS
            )
            return "K" if structural else "U"
        return "K"

    def _resolve(self, action: str, tag: BaseTag, *, nested: bool) -> str:
        """Reduce X, Z and the compound codes to one of X, Z, D, U, K, C by the PS3.3 type.

        Type 1 needs a value (D), type 2 may be empty (Z), type 3 may be
        removed (X).  Types are the strictest of the attribute in the IOD of
        the SOP Class, at the top level or inside sequences (``iod_types.json``).  PS3.15 E.1.1 Note 1
        makes IOD integrity the de-identifier's duty, so a plain X on an
        attribute of type 1 or 2 (e.g. Responsible Person, type 2C for
        animals) becomes D or Z: removed information either way.

        ``X/Z/U*`` is always U: the reference sequence is kept with every UID
        in it replaced, so that references between de-identified instances
        (source images, derived series) survive; the UIDs were the
        identifying part.
        """
        if action == "X/Z/U*":
            return "U"
        if action in ("K", "C", "U", "D"):
            return action
        allowed = action.split("/")
        level = self.iod_types.type_of(self.sop_class_uid, tag, nested=nested)
        if level == "1":
            return "D"
        if level == "2":
            return "Z" if "Z" in allowed or action == "X" else "D"
        return "X" if "X" in allowed else "Z"

    # -- applying it ----------------------------------------------------------

    def _apply(self, ds: Dataset, elem: DataElement, op: str, *, dummy: bool) -> None:
        vr = elem.VR
        if op == "X":
            del ds[elem.tag]
            self.counts["remove"] += 1
        elif vr == "SQ":
            self._sequence(elem, op, dummy=dummy or op == "D")
        elif op == "K":
            self.counts["keep"] += 1
        elif op == "Z":
            elem.value = elem.empty_value
            self.counts["empty"] += 1
        elif op == "U" or (op == "D" and vr == "UI"):
            self._uid(elem)
        elif op == "D":
            self._dummy(elem)
        else:
            self._clean(elem)

    def _sequence(self, elem: DataElement, op: str, *, dummy: bool) -> None:
        """Z empties a sequence; every other kept action recurses into its items.

        PS3.15 E.1.1: "in the case of Sequences, the action is applicable to
        the Sequence and all of its contents"; K and C recurse, and so do U
        and D.  D (a dummy sequence) keeps the structure and replaces the
        free text in it as well (``dummy``).
        """
        if op == "Z":
            elem.value = Sequence()
            self.counts["empty"] += 1
            return
        for item in elem.value or ():
            self.dataset(item, nested=True, dummy=dummy)

    def _uid(self, elem: DataElement) -> None:
        value = elem.value
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, (list, MultiValue)):
            elem.value = [self.uids(str(v)) for v in value]
        elif value:
            elem.value = self.uids(str(value))
        elif value is None or value == "":
            elem.value = self.uids(f"dummy:{int(elem.tag):08X}")
        self.counts["replace-uid"] += 1

    def _dummy(self, elem: DataElement) -> None:
        vr = elem.VR.split(" or ")[0]
        if vr == "UN":
            known = _dictionary_vr(elem.tag)
            if known is not None and known not in ("SQ", "UI"):
                elem.VR = vr = known.split(" or ")[0]
        elem.value = dummy_for(vr)
        self.counts["dummy"] += 1

    def _clean(self, elem: DataElement) -> None:
        """Action C: shift dates (modified-dates option), clean free text, keep the rest."""
        vr = elem.VR
        if vr in ("DA", "DT") and self.days is not None:
            shift = shift_da if vr == "DA" else shift_dt
            values = elem.value if isinstance(elem.value, (list, MultiValue)) else [elem.value]
            shifted = [shift(str(v), self.days) if v else "" for v in values if v is not None]
            fallback = DUMMY_DATE if vr == "DA" else dummy_for("DT")
            result = [s if s is not None else fallback for s in shifted]
            elem.value = result if len(result) != 1 else result[0]
            self.counts["shift-date"] += 1
        elif vr in _TEXT_VRS and isinstance(elem.value, (str, MultiValue, list)):
            if isinstance(elem.value, str):
                elem.value = self.cleaner.text(elem.value)
            else:
                elem.value = [self.cleaner.text(str(v)) for v in elem.value]
            self.counts["clean"] += 1
        else:
            self.counts["keep"] += 1

    def _safe_private_tags(self, ds: Dataset) -> set[BaseTag]:
        """Private tags of ``ds`` to keep: safe elements and their Private Creators (E.3.10)."""
        if Option.RETAIN_SAFE_PRIVATE not in self.profile.options:
            return set()
        safe = load_safe_private()
        keep: set[BaseTag] = set()
        for elem in ds:
            tag = elem.tag
            if not tag.is_private or tag.element < 0x1000:
                continue
            creator_tag = BaseTag((tag.group << 16) | (tag.element >> 8))
            creator = ds.get(creator_tag)
            name = str(creator.value).strip() if creator is not None else ""
            entry = safe.get((tag.group, name, tag.element & 0xFF))
            if entry is not None and elem.VR in (entry.vr, "UN"):
                keep.update({tag, creator_tag})
        return keep

    def _private(self, ds: Dataset, elem: DataElement, keep: set[BaseTag]) -> None:
        """Private Attributes: removed (basic X) unless on the safe list (option C)."""
        if elem.tag in keep:
            self.counts["keep-private"] += 1
        else:
            del ds[elem.tag]
            self.counts["remove-private"] += 1


def _dictionary_vr(tag: BaseTag) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _record_method(ds: Dataset, profile: Profile, *, modified_dates: bool) -> None:
    """Patient Identity Removed, De-identification Method (+ Code Sequence), PS3.15 E.1.1 item 6.

    Longitudinal Temporal Information Modified (0028,0303) is MODIFIED when
    dates were shifted, else REMOVED (PS3.3 C.7.6.1.1.1).  Values and codes of
    an earlier de-identification are kept, ours appended.
    """
    ds.PatientIdentityRemoved = "YES"
    previous = ds.get("DeidentificationMethod")
    texts = [str(v) for v in (previous if isinstance(previous, MultiValue) else [previous]) if v]
    ds.DeidentificationMethod = texts + [t for t in profile.method_texts if t not in texts]
    codes = ds.get("DeidentificationMethodCodeSequence") or Sequence()
    present = {
        (str(item.get("CodingSchemeDesignator", "")), str(item.get("CodeValue", ""))) for item in codes
    }
    for value, meaning in profile.method_codes:
        if ("DCM", value) not in present:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if modified_dates else "REMOVED"


def _file_meta(original: Dataset, out: Dataset, uids: UidMapper) -> FileMetaDataset:
    """New File Meta Information naming this de-identifier (PS3.15 E.1.1 item 7).

    Media Storage SOP Instance UID is the new SOP Instance UID; the Transfer
    Syntax is the original one (Pixel Data is unchanged).
    """
    old = getattr(original, "file_meta", None) or FileMetaDataset()
    meta = FileMetaDataset()
    sop_class = out.get("SOPClassUID") or old.get("MediaStorageSOPClassUID")
    if sop_class:
        meta.MediaStorageSOPClassUID = sop_class
    if "SOPInstanceUID" in out:
        meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    elif "MediaStorageSOPInstanceUID" in old:
        meta.MediaStorageSOPInstanceUID = UID(uids(str(old.MediaStorageSOPInstanceUID)))
    meta.TransferSyntaxUID = UID(old.get("TransferSyntaxUID") or _syntax_of(original))
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _syntax_of(ds: Dataset) -> str:
    """Transfer Syntax of a dataset read without File Meta Information."""
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian


__all__ = ["DeidResult", "deidentify"]
