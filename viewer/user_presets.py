"""A reader's own window presets (``/api/me/presets/``): the actions, each ``check`` then ``do``.

Presets belong to one user and apply in every project, to images of their modality; nobody else
reads or changes them (another user's preset answers 404, as one that does not exist). Every size
is bounded: at most :data:`MAX_PRESETS` per user, labels of :data:`MAX_LABEL` characters, finite
windows within :data:`MAX_MAGNITUDE`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max

from crossread.errors import BadRequest, DomainError, ErrorCode, NotFound
from viewer.models import UserPreset

MAX_PRESETS = 40
MAX_LABEL = 40
MAX_MAGNITUDE = 100_000.0  # |center| and width, in modality units (HU: -1024 .. 3071 and beyond)
_MODALITY = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")


def serialize(preset: UserPreset) -> dict[str, Any]:
    return {"id": preset.pk, "modality": preset.modality, "label": preset.label,
            "center": preset.center, "width": preset.width, "position": preset.position}


def list_presets(user: Any) -> list[dict[str, Any]]:
    return [serialize(p) for p in UserPreset.objects.filter(user=user).order_by("position", "pk")]


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{key} must be a finite number.")
    if abs(value) > MAX_MAGNITUDE:
        raise BadRequest(f"{key} must be within ±{MAX_MAGNITUDE:g}.")
    return float(value)


def check_fields(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The validated fields of a preset (all of them, or with ``partial`` those given)."""
    if not isinstance(data, Mapping):
        raise BadRequest("Send a JSON object.")
    unknown = set(data) - {"modality", "label", "center", "width"}
    if unknown:
        raise BadRequest(f"Unknown field {sorted(unknown)[0][:40]!r}.")
    out: dict[str, Any] = {}
    for key in ("modality", "label", "center", "width"):
        if key not in data:
            if not partial:
                raise BadRequest(f"{key} is required.")
            continue
        if key in ("center", "width"):
            out[key] = _number(data, key)
        else:
            text = data[key]
            if not isinstance(text, str):
                raise BadRequest(f"{key} must be text.")
            out[key] = text.strip()
    if "width" in out and out["width"] < 1:
        raise BadRequest("width must be at least 1.")
    if "label" in out and not 1 <= len(out["label"]) <= MAX_LABEL:
        raise BadRequest(f"label must have 1 to {MAX_LABEL} characters.")
    if "modality" in out:
        out["modality"] = out["modality"].upper()
        if not _MODALITY.match(out["modality"]):
            raise BadRequest("modality must be a DICOM modality such as CT or MR.")
    return out


def _own(user: Any, preset_id: int) -> UserPreset:
    found = UserPreset.objects.filter(user=user, pk=preset_id).first()
    if found is None:
        raise NotFound("No such preset.")
    return found


@transaction.atomic
def create_preset(user: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    fields = check_fields(data)
    mine = UserPreset.objects.select_for_update().filter(user=user)
    if mine.count() >= MAX_PRESETS:
        raise DomainError(f"At most {MAX_PRESETS} presets per user; delete one first.", code=ErrorCode.TOO_LARGE)
    last = mine.aggregate(last=Max("position"))["last"]
    return serialize(UserPreset.objects.create(user=user, position=0 if last is None else last + 1, **fields))


def update_preset(user: Any, preset_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
    fields = check_fields(data, partial=True)
    preset = _own(user, preset_id)
    for key, value in fields.items():
        setattr(preset, key, value)
    preset.save(update_fields=list(fields) or None)
    return serialize(preset)


def delete_preset(user: Any, preset_id: int) -> None:
    _own(user, preset_id).delete()


@transaction.atomic
def order_presets(user: Any, ids: Any) -> list[dict[str, Any]]:
    """Put the presets ``ids`` first, in that order; the user's others keep their order after them."""
    if not isinstance(ids, list) or len(ids) > MAX_PRESETS or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise BadRequest(f"ids must be a list of at most {MAX_PRESETS} preset ids.")
    if len(set(ids)) != len(ids):
        raise BadRequest("ids must not repeat.")
    mine = {p.pk: p for p in UserPreset.objects.select_for_update().filter(user=user)}
    if any(i not in mine for i in ids):
        raise NotFound("No such preset.")
    rest = [p for p in sorted(mine.values(), key=lambda p: (p.position, p.pk)) if p.pk not in set(ids)]
    ordered = [mine[i] for i in ids] + rest
    for position, preset in enumerate(ordered):
        preset.position = position
    UserPreset.objects.bulk_update(ordered, ["position"])
    return [serialize(p) for p in ordered]
