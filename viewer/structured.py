"""DICOM Structured Reports as a readable tree (PS3.3 C.17.3, PS3.16 TID 1500 and others). No Django.

:func:`report_tree` turns any SR document (Basic, Enhanced, Comprehensive, Comprehensive 3D Text SR,
Key Object Selection...) into a JSON tree the viewer shows as a report: containers as headings,
numeric measurements with their value and units, coded concepts with their meanings, text, dates,
person names, UIDs, image and composite references, and spatial coordinates. The spatial coordinates
also come out flat, as the regions the viewer draws on the images they refer to: SCOORD with the
image it was SELECTED FROM (PS3.3 C.18.6: pixel coordinates, (0, 0) the top-left corner of the
top-left pixel, as the viewer's image points), SCOORD3D with its Frame of Reference (patient
coordinates, mm).

Tolerant when reading: an item this reader does not understand becomes a node with its value type
and concept name. Bounded: at most :data:`MAX_DEPTH` levels, :data:`MAX_NODES` items and
:data:`MAX_POINTS` coordinates; past a bound the rest is left out and the tree says ``truncated``.

A blinded reader (``masked``) gets the tree without its person names, dates, times and free text
(PNAME, DATE, TIME, DATETIME and TEXT items are left out, and so is the document's header: content
date, observers, the patient) and the count of what was withheld; codes, numbers, units and image
references, the substance of a reading, stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

#: Deepest nesting of content items read (TID 1500 goes about 6 deep).
MAX_DEPTH = 24
#: Most content items read from one document.
MAX_NODES = 5000
#: Most coordinates (x, y or x, y, z triples count once each) kept in all regions.
MAX_POINTS = 50_000

#: Value types left out of a masked report (names, dates, free text).
MASKED_VALUE_TYPES = frozenset({"PNAME", "DATE", "TIME", "DATETIME", "TEXT"})

#: Storage SOP Classes of SR documents (PS3.4 B.5), by short name.
SR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
    "1.2.840.10008.5.1.4.1.1.88.40": "Procedure Log",
    "1.2.840.10008.5.1.4.1.1.88.50": "Mammography CAD SR",
    "1.2.840.10008.5.1.4.1.1.88.59": "Key Object Selection Document",
    "1.2.840.10008.5.1.4.1.1.88.65": "Chest CAD SR",
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.68": "Radiopharmaceutical Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.69": "Colon CAD SR",
    "1.2.840.10008.5.1.4.1.1.88.70": "Implantation Plan SR",
    "1.2.840.10008.5.1.4.1.1.88.71": "Acquisition Context SR",
    "1.2.840.10008.5.1.4.1.1.88.72": "Simplified Adult Echo SR",
    "1.2.840.10008.5.1.4.1.1.88.73": "Patient Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.74": "Planned Imaging Agent Administration SR",
    "1.2.840.10008.5.1.4.1.1.88.75": "Performed Imaging Agent Administration SR",
    "1.2.840.10008.5.1.4.1.1.88.76": "Enhanced X-Ray Radiation Dose SR",
}


class NotAReport(ValueError):
    """The data set is not an SR document (no SR Document Content)."""


def is_structured_report(ds: Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) in SR_SOP_CLASSES or (
        ds.get("Modality") in ("SR", "KO") and "ValueType" in ds
    )


def report_tree(ds: Dataset, *, masked: bool = False) -> dict[str, Any]:
    """The SR document ``ds`` as a JSON-able tree (see the module's docstring)."""
    if "ValueType" not in ds and "ContentSequence" not in ds:
        raise NotAReport("Not a structured report: no SR Document Content.")
    reader = _Reader(masked)
    root = reader.node(ds, depth=0, path="1", relationship="")
    sop_class = str(ds.get("SOPClassUID", ""))
    tree: dict[str, Any] = {
        "sopInstanceUID": str(ds.get("SOPInstanceUID", "")),
        "sopClass": SR_SOP_CLASSES.get(sop_class, sop_class),
        "modality": str(ds.get("Modality", "")),
        "title": root.get("name", {}).get("meaning", "") if root else "",
        "template": _template(ds),
        "completion": str(ds.get("CompletionFlag", "")),
        "verification": str(ds.get("VerificationFlag", "")),
        "preliminary": str(ds.get("PreliminaryFlag", "")),
        "content": root.get("children", []) if root else [],
        "regions": reader.regions,
        "truncated": reader.truncated,
        "withheld": reader.withheld,
        "masked": masked,
    }
    if not masked:
        tree["contentDate"] = _date_time(ds.get("ContentDate", ""), ds.get("ContentTime", ""))
        tree["seriesDescription"] = str(ds.get("SeriesDescription", ""))
        tree["verifiers"] = [str(item.get("VerifyingObserverName", "")) for item in ds.get("VerifyingObserverSequence", [])][:20]
    return tree


def _template(ds: Dataset) -> str:
    for item in ds.get("ContentTemplateSequence", []) or []:
        return str(item.get("TemplateIdentifier", ""))
    return ""


def _date_time(date: Any, time: Any) -> str:
    d, t = str(date or ""), str(time or "")
    out = f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) >= 8 and d.isdigit() else d
    if len(t) >= 4:
        out += f" {t[:2]}:{t[2:4]}"
    return out.strip()


def coded(item: Dataset | None) -> dict[str, str] | None:
    """A Code Sequence item as ``{"value", "scheme", "meaning"}`` (PS3.3 Table 8.8-1)."""
    if item is None:
        return None
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue") or ""
    return {
        "value": str(value),
        "scheme": str(item.get("CodingSchemeDesignator", "")),
        "meaning": str(item.get("CodeMeaning", "")),
    }


def _first(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    if isinstance(seq, Sequence) and len(seq):
        first: Dataset = seq[0]
        return first
    return None


def _numbers(values: Any) -> list[float]:
    if values is None:
        return []
    if isinstance(values, (int, float)):
        return [float(values)]
    return [float(v) for v in values]


class _Reader:
    def __init__(self, masked: bool) -> None:
        self.masked = masked
        self.nodes = 0
        self.points = 0
        self.truncated = False
        self.withheld = 0
        self.regions: list[dict[str, Any]] = []

    def node(self, item: Dataset, *, depth: int, path: str, relationship: str,
             context: tuple[str, ...] = ()) -> dict[str, Any] | None:
        if self.nodes >= MAX_NODES or depth > MAX_DEPTH:
            self.truncated = True
            return None
        self.nodes += 1
        if "ReferencedContentItemIdentifier" in item:  # by-reference relationship (PS3.3 C.17.3.2.4)
            ref = ".".join(str(int(v)) for v in _numbers(item.ReferencedContentItemIdentifier))
            return {"type": "REFERENCE", "relationship": relationship, "ref": ref, "id": path}
        value_type = str(item.get("ValueType", ""))
        if self.masked and value_type in MASKED_VALUE_TYPES:
            self.withheld += 1
            return None
        name = coded(_first(item, "ConceptNameCodeSequence"))
        node: dict[str, Any] = {"type": value_type, "relationship": relationship, "id": path}
        if name:
            node["name"] = name
        label = (name or {}).get("meaning", "")
        node.update(self._value(item, value_type))
        children: list[dict[str, Any]] = []
        below = (*context, self._group_label(item, label)) if value_type == "CONTAINER" else context
        for index, child in enumerate(item.get("ContentSequence", []) or [], start=1):
            found = self.node(child, depth=depth + 1, path=f"{path}.{index}",
                              relationship=str(child.get("RelationshipType", "")), context=below)
            if found is not None:
                children.append(found)
        if children:
            node["children"] = children
        if value_type in ("SCOORD", "SCOORD3D") and "points" in node:
            self._region(node, children, context, label)
        for child in children:  # a measurement INFERRED FROM its region names it
            if child["type"] in ("SCOORD", "SCOORD3D") and value_type == "NUM" and child.get("region") is not None:
                region = self.regions[child["region"]]
                region["label"] = _measurement_label(label, node)
                region["tracking"] = region.get("tracking") or _tracking(context)
        return node

    def _group_label(self, item: Dataset, label: str) -> str:
        """A container's name for the regions inside it: its Tracking Identifier (DCM 112039) when
        it has one (a lesion's "T1"), else its concept name. Free text: not in a masked report."""
        if not self.masked:
            for child in item.get("ContentSequence", []) or []:
                name = coded(_first(child, "ConceptNameCodeSequence")) or {}
                if child.get("ValueType") == "TEXT" and (name.get("scheme"), name.get("value")) == ("DCM", "112039"):
                    return str(child.get("TextValue", ""))[:64]
        return label

    def _value(self, item: Dataset, value_type: str) -> dict[str, Any]:
        if value_type == "CONTAINER":
            return {"continuity": str(item.get("ContinuityOfContent", ""))}
        if value_type == "NUM":
            measured = _first(item, "MeasuredValueSequence")
            if measured is None:
                qualifier = coded(_first(item, "NumericValueQualifierCodeSequence"))
                return {"value": None, "qualifier": qualifier}
            number = measured.get("NumericValue")
            unit = coded(_first(measured, "MeasurementUnitsCodeSequence"))
            return {"value": str(number) if number is not None else None,
                    "number": float(number) if number not in (None, "") else None, "unit": unit}
        if value_type == "CODE":
            return {"code": coded(_first(item, "ConceptCodeSequence"))}
        if value_type == "TEXT":
            return {"text": str(item.get("TextValue", ""))[:10_000]}
        if value_type == "DATE":
            return {"text": _date_time(item.get("Date", ""), "")}
        if value_type == "TIME":
            return {"text": _date_time("", item.get("Time", ""))}
        if value_type == "DATETIME":
            dt = str(item.get("DateTime", ""))
            return {"text": _date_time(dt[:8], dt[8:14])}
        if value_type == "PNAME":
            return {"text": str(item.get("PersonName", "")).replace("^", " ").strip()}
        if value_type == "UIDREF":
            return {"uid": str(item.get("UID", ""))}
        if value_type in ("IMAGE", "COMPOSITE", "WAVEFORM"):
            ref = _first(item, "ReferencedSOPSequence")
            if ref is None:
                return {}
            out: dict[str, Any] = {
                "sopClassUID": str(ref.get("ReferencedSOPClassUID", "")),
                "sopInstanceUID": str(ref.get("ReferencedSOPInstanceUID", "")),
            }
            frames = [int(v) for v in _numbers(ref.get("ReferencedFrameNumber"))][:1000]
            if frames:
                out["frames"] = frames
            return out
        if value_type == "SCOORD":
            return self._points(item, 2)
        if value_type == "SCOORD3D":
            out = self._points(item, 3)
            out["frameOfReferenceUID"] = str(item.get("ReferencedFrameOfReferenceUID", ""))
            return out
        if value_type == "TCOORD":
            return {"temporalRangeType": str(item.get("TemporalRangeType", ""))}
        return {}

    def _points(self, item: Dataset, size: int) -> dict[str, Any]:
        data = _numbers(item.get("GraphicData"))
        count = len(data) // size
        if self.points + count > MAX_POINTS:
            self.truncated = True
            return {"graphicType": str(item.get("GraphicType", ""))}
        self.points += count
        points = [[round(v, 4) for v in data[i * size:(i + 1) * size]] for i in range(count)]
        return {"graphicType": str(item.get("GraphicType", "")), "points": points}

    def _region(self, node: dict[str, Any], children: list[dict[str, Any]], context: tuple[str, ...], label: str) -> None:
        region: dict[str, Any] = {"graphicType": node["graphicType"], "points": node["points"], "label": label,
                                  "tracking": _tracking(context)}
        if node["type"] == "SCOORD":
            image = next((c for c in children if c["type"] == "IMAGE"), None)
            if image is None:
                return  # a 2-D region names its image (SELECTED FROM); without it, nowhere to draw
            region["sopInstanceUID"] = image.get("sopInstanceUID", "")
            region["frame"] = (image.get("frames") or [1])[0]
        else:
            region["frameOfReferenceUID"] = node.get("frameOfReferenceUID", "")
        node["region"] = len(self.regions)
        self.regions.append(region)


def _tracking(context: Iterable[str]) -> str:
    return next((c for c in reversed(tuple(context)) if c), "")[:200]


def _measurement_label(name: str, node: dict[str, Any]) -> str:
    unit = (node.get("unit") or {}).get("value", "")
    value = node.get("value")
    return f"{name} {value} {unit}".strip() if value is not None else name
