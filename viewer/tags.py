"""The DICOM tag browser's rows: one instance's DICOM JSON as a bounded, named tree. Pure: no Django.

Input is the instance's DICOM JSON (PS3.18 F.2) exactly as WADO-RS metadata gives it to the caller,
so already masked for a blinded reader (:meth:`viewer.access.ProjectAccess.masked`): this module
adds names and bounds, never data. Each element becomes ``{"tag": "(0010,0010)", "keyword",
"name", "vr", "value"}``; a sequence has ``"items"`` (a list of element lists), bulk data (Pixel
Data, large OB/OW values stored as ``BulkDataURI``) a ``"bulk"`` URL instead of a value. Private
elements are named from pydicom's private dictionary when their Private Creator (the ``gggg,00xx``
element of their block) is known to it.

Bounds, so a huge header cannot make a huge answer: at most :data:`MAX_ROWS` elements in all (the
rest is counted, not listed), values cut at :data:`MAX_VALUE_CHARS` characters and at
:data:`MAX_VALUES` values of a multi-valued element (``"truncated"`` says how long it was), sequences
listed to :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydicom import datadict

MAX_ROWS = 4000
MAX_VALUE_CHARS = 512
MAX_VALUES = 64
MAX_DEPTH = 8


def tag_text(tag: str) -> str:
    """``"00100010"`` → ``"(0010,0010)"``."""
    return f"({tag[:4]},{tag[4:8]})"


def _value_text(element: Mapping[str, Any]) -> tuple[str, int | None]:
    """The value as one line of text, and its full length when cut (else None)."""
    vr = element.get("vr", "")
    values = element.get("Value")
    if values is None:
        if "InlineBinary" in element:
            inline = str(element["InlineBinary"])
            text = f"[{len(inline) * 3 // 4} bytes, base64] {inline}"
        else:
            return "", None
    else:
        shown = []
        for value in values[:MAX_VALUES]:
            if vr == "PN" and isinstance(value, dict):
                shown.append("=".join(str(value.get(group, "")) for group in ("Alphabetic", "Ideographic", "Phonetic")
                                      if value.get(group) is not None))
            else:
                shown.append("" if value is None else str(value))
        text = "\\".join(shown)
        if len(values) > MAX_VALUES:
            text += f"\\… ({len(values)} values)"
    if len(text) > MAX_VALUE_CHARS:
        return text[:MAX_VALUE_CHARS], len(text)
    return text, None


def _creators(elements: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    """Private Creator of each private block: (group, block byte) → creator."""
    found: dict[tuple[int, int], str] = {}
    for tag, element in elements.items():
        try:
            group, number = int(tag[:4], 16), int(tag[4:8], 16)
        except ValueError:
            continue
        if group % 2 == 1 and 0x0010 <= number <= 0x00FF and isinstance(element, dict):
            value = (element.get("Value") or [None])[0]
            if isinstance(value, str):
                found[(group, number)] = value.strip()
    return found


def _names(tag: str, creators: Mapping[tuple[int, int], str]) -> tuple[str, str, str]:
    """(keyword, name, private creator) of a tag; private ones by their creator."""
    try:
        number = int(tag, 16)
    except ValueError:
        return "", "", ""
    group, element = number >> 16, number & 0xFFFF
    if group % 2 == 0:
        keyword = datadict.keyword_for_tag(number)
        try:
            name = datadict.dictionary_description(number) if keyword else ""
        except KeyError:
            name = ""
        if not name and element == 0:
            name = "Group Length"
        return keyword, name, ""
    if 0x0010 <= element <= 0x00FF:
        return "", "Private Creator", ""
    creator = creators.get((group, element >> 8), "")
    if not creator:
        return "", "Private tag (no creator)", ""
    try:
        return "", datadict.private_dictionary_description(number, creator), creator
    except KeyError:
        return "", "Private tag", creator


class _Budget:
    def __init__(self, rows: int) -> None:
        self.left = rows
        self.omitted = 0


def _rows(elements: Mapping[str, Any], bulk_url: str, budget: _Budget, depth: int) -> list[dict[str, Any]]:
    creators = _creators(elements)
    rows: list[dict[str, Any]] = []
    for tag in sorted(elements):
        element = elements[tag]
        if not isinstance(element, dict):
            continue
        if budget.left <= 0:
            budget.omitted += 1
            continue
        budget.left -= 1
        keyword, name, creator = _names(tag, creators)
        vr = str(element.get("vr", ""))
        row: dict[str, Any] = {"tag": tag_text(tag), "keyword": keyword, "name": name, "vr": vr}
        if creator:
            row["creator"] = creator
        if vr == "SQ":
            items = element.get("Value") or []
            if depth >= MAX_DEPTH:
                row["value"] = f"{len(items)} item(s), not listed (nested deeper than {MAX_DEPTH})"
            else:
                row["items"] = [_rows(item, bulk_url, budget, depth + 1) for item in items if isinstance(item, dict)]
                row["value"] = f"{len(items)} item{'s' if len(items) != 1 else ''}"
        elif "BulkDataURI" in element:
            uri = str(element["BulkDataURI"])
            row["bulk"] = uri if "://" in uri or uri.startswith("/") else f"{bulk_url}/{uri}"
            row["value"] = "bulk data"
        else:
            text, full = _value_text(element)
            row["value"] = text
            if full is not None:
                row["truncated"] = full
        rows.append(row)
    return rows


def tag_tree(metadata: Mapping[str, Any], bulk_url: str, *, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The rows of one instance's DICOM JSON ``metadata`` (already as the caller may read it).

    ``bulk_url``: the instance's WADO-RS URL, for relative ``BulkDataURI`` values (``bulkdata/<tag>``).
    Returns ``{"elements": [...], "omitted": n}``: ``omitted`` counts elements beyond ``max_rows``.
    """
    budget = _Budget(max_rows)
    rows = _rows(metadata, bulk_url.rstrip("/"), budget, 0)
    return {"elements": rows, "omitted": budget.omitted, "limits": {
        "rows": max_rows, "value_chars": MAX_VALUE_CHARS, "values": MAX_VALUES, "depth": MAX_DEPTH}}


__all__ = ["MAX_DEPTH", "MAX_ROWS", "MAX_VALUES", "MAX_VALUE_CHARS", "tag_text", "tag_tree"]
