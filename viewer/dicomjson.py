"""DICOM JSON (PS3.18 F.2) of a data set as pydicom read it, built from the raw bytes of its plain
elements. No Django here.

pydicom's own ``Dataset.to_json_dict`` turns each element into a Python value first (a
``DataElement``, its value class, its multiplicity) and then into JSON: about 10 µs an element, more
than half of describing a 512x512 CT slice on ingest. Most elements of a real file are plain: a
string in the default character repertoire, Latin-1 or UTF-8, a number, a binary value. Those are
written here straight from their bytes, exactly as pydicom would write them (the corpus test in
``tests/viewer/test_dicomjson.py`` holds the two to the same output). Anything else (a sequence, a
value that is not what its VR says, code extensions, an implicit-VR or big-endian element, an
element pydicom has already turned into a value) goes through pydicom, one element at a time:
``convert(tag)`` gives the element as pydicom makes it, and may raise on a damaged value.

A value too long to be inline (:func:`element_json`'s ``bulk_bytes``) need not have been read:
reading a file with pydicom's ``defer_size`` leaves its bytes (Pixel Data) in the file.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Callable
from typing import Any

#: VRs whose values are numbers in binary: their ``struct`` format and size.
_BINARY_NUMBERS = {
    "US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q",
}
_SIZES = {vr: struct.calcsize("<" + code) for vr, code in _BINARY_NUMBERS.items()}
#: VRs whose values are bytes (InlineBinary or BulkDataURI). UN is not among them: pydicom may read
#: an explicit UN element by its dictionary VR.
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV"})
#: Strings in the default repertoire whatever the Specific Character Set (PS3.5 6.1.2.3), split at
#: backslashes, trailing spaces and NULs dropped from the whole value.
_PLAIN_STRINGS = frozenset({"AS", "CS", "DA", "DT", "TM", "UI"})
#: Strings in the data set's character set: several values (SH, LO, UC) or one (ST, LT, UT).
_TEXT_VALUES = frozenset({"SH", "LO", "UC"})
_TEXT = frozenset({"ST", "LT", "UT"})
#: The Specific Character Sets (0008,0005) read here, as Python codecs (pydicom's): the default
#: repertoire (which pydicom reads as Latin-1), Latin-1 and UTF-8. Others go through pydicom.
_CODECS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
#: Every VR read here (an empty SQ is ``"Value": []``, an empty UN may be one: pydicom's).
_READ_HERE = BINARY_VRS | _BINARY_NUMBERS.keys() | _PLAIN_STRINGS | _TEXT_VALUES | _TEXT | {"AE", "UR", "DS", "IS", "PN"}
_INTEGER = re.compile(r"\s*[+-]?\d+\s*\Z", re.ASCII)
_NOT_PLAIN = object()


def character_set(raw_value: bytes | None) -> str | None:
    """The codec of a Specific Character Set value read here, or None (pydicom reads the text)."""
    if not raw_value:
        return _CODECS[""]
    return _CODECS.get(raw_value.decode("latin_1").strip(" \x00"))


def element_json(
    vr: str, value: bytes | None, length: int, codec: str | None, bulk_bytes: int, bulk_uri: Callable[[], str]
) -> dict[str, Any] | None:
    """The DICOM JSON of a little-endian element of ``vr`` read as ``value`` (None: left in the
    file, ``length`` bytes), as pydicom writes it; None when it is not plain (pydicom writes it)."""
    if vr not in _READ_HERE:
        return None
    if vr in BINARY_VRS:
        if length == 0:
            return {"vr": vr}
        if length > bulk_bytes:
            return {"vr": vr, "BulkDataURI": bulk_uri()}
        if value is None:
            return None
        return {"vr": vr, "InlineBinary": base64.b64encode(value).decode("ascii")}
    if value is None:
        return None
    if not value:
        return {"vr": vr}
    values = _values(vr, value, codec)
    if values is _NOT_PLAIN:
        return None
    if not values:
        return {"vr": vr}
    return {"vr": vr, "Value": values}


def _values(vr: str, value: bytes, codec: str | None) -> Any:
    """The JSON values of a non-empty element (``[]`` when pydicom finds it empty), or _NOT_PLAIN."""
    if vr in _BINARY_NUMBERS:
        size = _SIZES[vr]
        if len(value) % size:
            return _NOT_PLAIN
        numbers = list(struct.unpack(f"<{len(value) // size}{_BINARY_NUMBERS[vr]}", value))
        if vr in ("FL", "FD"):
            if not all(map(math.isfinite, numbers)):
                return _NOT_PLAIN
            return [float(n) for n in numbers]
        return numbers
    if b"\x1b" in value:  # code extensions (ISO 2022): pydicom's
        return _NOT_PLAIN
    if vr in _PLAIN_STRINGS:
        items = value.decode("latin_1").rstrip(" \x00").split("\\")
    elif vr == "AE":
        items = [item.strip() for item in value.decode("latin_1").split("\\")]
    elif vr == "UR":
        items = [value.decode("latin_1").rstrip()]
    elif vr == "DS":
        items = value.decode("latin_1").strip().rstrip(" \x00").split("\\")
        return _numbers(items, _decimal)
    elif vr == "IS":
        items = value.decode("latin_1").rstrip(" \x00").split("\\")
        return _numbers(items, _integer)
    elif vr in _TEXT_VALUES or vr in _TEXT or vr == "PN":
        if codec is None:
            return _NOT_PLAIN
        try:
            if vr == "PN":
                text = value.rstrip(b"\x00 ").decode(codec)
            else:
                text = value.decode(codec)
        except UnicodeDecodeError:  # pydicom replaces what it cannot decode, with a warning
            return _NOT_PLAIN
        if vr == "PN":
            if "=" in text:  # ideographic or phonetic groups
                return _NOT_PLAIN
            items = text.split("\\")
            if len(items) > 1 and not all(items):
                return _NOT_PLAIN
            return [{"Alphabetic": item} for item in items] if items != [""] else []
        if vr in _TEXT:
            items = [text.rstrip("\x00 ")]
        else:
            items = [item.rstrip("\x00 ") for item in text.split("\\")]
    else:
        raise AssertionError(vr)  # (every VR of _READ_HERE is read above)
    return items if items != [""] else []


def _numbers(items: list[str], parse: Callable[[str], float | int | None]) -> Any:
    if items == [""]:
        return []
    numbers = [parse(item) for item in items]
    return _NOT_PLAIN if None in numbers else numbers


def _decimal(item: str) -> float | None:
    try:
        number = float(item)
    except ValueError:
        return None
    return number if math.isfinite(number) and item.strip() else None


def _integer(item: str) -> int | None:
    return int(item) if _INTEGER.match(item) else None
