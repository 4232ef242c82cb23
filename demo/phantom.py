"""A synthetic, fully documented CT phantom: two studies of one made-up patient.

Nothing here comes from a patient. The phantom is drawn from geometric shapes
(ellipses, spheres, tubes) with textbook Hounsfield units, so that the viewer
and the RECIST work have a realistic multi-slice CT series with *known* truth:
every lesion has a declared centre and diameter and several regions have a
declared mean HU. See ``docs/phantom.md`` for the tables.

No Django here. Entry points:

- :func:`write_phantom_studies` writes ``out_dir/baseline/CT_0001.dcm`` ...,
  ``out_dir/followup/...`` and ``phantom.json`` files describing them;
- :func:`make_slice` / :func:`make_volume` give the HU pixel data;
- :func:`phantom_lesions` and :func:`describe_phantom` give the ground truth.

Conventions
-----------
- Patient coordinates are DICOM LPS: +x towards the patient's left, +y
  posterior, +z superior. Axial images, ImageOrientationPatient [1,0,0,0,1,0]:
  columns run along +x, rows along +y (anterior at the top of the image).
- The field of view is fixed at 358.4 mm and the scanned length at 300 mm, so
  ``size`` and ``slices`` only change the sampling: PixelSpacing is
  ``358.4 / size`` (0.7 mm at 512) and the slice spacing ``300 / slices``
  (2.5 mm at 120). Slice 0 (InstanceNumber 1) is the most superior, at z = 0;
  slice ``i`` is at z = ``-i * spacing``.
- Pixel (col, row) has its centre at x = -179.2 + col * ps, y = -179.2 + row * ps,
  so the image centre (size/2, size/2) is x = y = 0.
- Stored pixels are unsigned 12 bit in 16 (BitsStored 12, PixelRepresentation 0)
  with RescaleIntercept -1024, RescaleSlope 1, RescaleType HU: HU = stored - 1024.
- Shapes are rendered with in-plane partial volume (a one-pixel linear ramp at
  each edge, 50 % exactly on the boundary). In z each slice samples the object
  at its centre plane (no slice-profile blurring). Lesion centres are snapped to
  a pixel centre and to a slice, so the centre row of the centre slice crosses
  the full declared diameter.
- Anatomy and UIDs are fixed; ``seed`` only drives the noise (zero-mean
  Gaussian, sigma 8 HU by default, independent per slice and study).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

PHANTOM_VERSION = 1
UID_NAMESPACE = "crossread.viewer.phantom"

FOV_MM = 358.4
Z_EXTENT_MM = 300.0
DEFAULT_SLICES = 120
DEFAULT_SIZE = 512
DEFAULT_NOISE_SIGMA = 8.0

RESCALE_INTERCEPT = -1024
BITS_STORED = 12
MAX_STORED = (1 << BITS_STORED) - 1

TIMEPOINTS = ("baseline", "followup")

PATIENT_ID = "PHANTOM-001"
PATIENT_NAME = "Phantom^Synthetic"
MANUFACTURER = "Crossread synthetic phantom"

# Mean HU of each tissue before noise. "uniform" tissues are flat (noise only),
# so a region of them has the mean below to well within 1 HU.
TISSUE_HU: dict[str, int] = {
    "air": -1000,  # outside the body, trachea and bronchi lumen
    "lung": -850,  # parenchyma; plus a smooth texture of up to +-15 HU and vessels
    "fat": -100,  # subcutaneous, mediastinal and visceral fat
    "soft_tissue": 40,  # muscle, chest wall, heart, esophagus, airway walls
    "liver": 60,
    "spleen": 45,
    "kidney": 30,
    "blood": 45,  # aorta and lung vessels (no contrast)
    "csf": 15,  # spinal canal
    "disc": 80,  # intervertebral disc
    "cancellous_bone": 250,  # vertebral body interior
    "cortical_bone": 1000,  # vertebral body cortex (3 mm)
    "rib": 800,  # ribs, posterior arch, processes
    "sternum": 700,
    "liver_lesion": 30,  # hypodense metastasis, 30 HU below liver
    "lung_nodule": 40,
    "lymph_node": 40,
}
LUNG_TEXTURE_AMPLITUDE = 15.0

SCENARIO = {
    "description": (
        "Baseline: three target lesions (liver 30 mm, right lung 15 mm, subcarinal "
        "node short axis 20 mm) and one non-target left lung nodule (8 mm, too small "
        "to be measurable). Follow-up 8 weeks later: every target shrinks "
        "(sum 65 -> 47 mm, -27.7 %: stable disease by the target sum, short of the "
        "-30 % of a partial response), the non-target nodule has disappeared, and a "
        "new 12 mm liver lesion has appeared, so the overall response is "
        "progressive disease."
    ),
    "baseline_sum_mm": 65.0,
    "followup_sum_mm": 47.0,
    "nadir_sum_mm": 65.0,
    "change_from_baseline_mm": -18.0,
    "change_from_baseline_percent": -27.7,  # -18/65 = -27.69 %
    "target_response": "SD",
    "non_target_response": "CR",
    "new_lesions": True,
    "overall_response": "PD",
}

STUDIES = {
    "baseline": {
        "study_date": "20240108",
        "study_time": "093000",
        "study_id": "BASELINE",
        "accession": "PHBL0001",
        "description": "SYNTHETIC phantom CT chest-abdomen, baseline",
    },
    "followup": {
        "study_date": "20240304",  # 8 weeks after baseline
        "study_time": "101500",
        "study_id": "FOLLOWUP1",
        "accession": "PHFU0001",
        "description": "SYNTHETIC phantom CT chest-abdomen, follow-up 8 weeks",
    },
}

# Lesions, in mm. "depth" is distance below the first slice (z = -depth).
# diameter: sphere diameter; nodes are ellipsoids with long axis along x
# (image rows) and short axis along y (image columns) and z.
_LESIONS = (
    {
        "id": "T1",
        "label": "Liver metastasis (right lobe)",
        "organ": "liver",
        "nodal": False,
        "role": "target",
        "centre": (-85.0, 0.0, 225.0),
        "hu": TISSUE_HU["liver_lesion"],
        "background": "liver",
        "size": {"baseline": (30.0, 30.0), "followup": (21.0, 21.0)},
    },
    {
        "id": "T2",
        "label": "Right lung nodule",
        "organ": "lung",
        "nodal": False,
        "role": "target",
        "centre": (-80.0, 20.0, 100.0),
        "hu": TISSUE_HU["lung_nodule"],
        "background": "lung",
        "size": {"baseline": (15.0, 15.0), "followup": (12.0, 12.0)},
    },
    {
        "id": "T3",
        "label": "Subcarinal lymph node",
        "organ": "lymph_node",
        "nodal": True,
        "role": "target",
        "centre": (0.0, 5.0, 75.0),
        "hu": TISSUE_HU["lymph_node"],
        "background": "fat",
        "size": {"baseline": (30.0, 20.0), "followup": (22.0, 14.0)},
    },
    {
        "id": "NT1",
        "label": "Left lung nodule (non-measurable, < 10 mm)",
        "organ": "lung",
        "nodal": False,
        "role": "non_target",
        "centre": (85.0, -30.0, 75.0),
        "hu": TISSUE_HU["lung_nodule"],
        "background": "lung",
        "size": {"baseline": (8.0, 8.0), "followup": (0.0, 0.0)},
    },
    {
        "id": "N1",
        "label": "New liver lesion (left lobe)",
        "organ": "liver",
        "nodal": False,
        "role": "new",
        "centre": (-30.0, -40.0, 250.0),
        "hu": TISSUE_HU["liver_lesion"],
        "background": "liver",
        "size": {"baseline": (0.0, 0.0), "followup": (12.0, 12.0)},
    },
)

# Regions that contain one flat tissue only (cylinders along z): an ROI inside
# has mean = expected HU (noise is zero-mean). depth range in mm, inclusive.
_UNIFORM_REGIONS = (
    {"name": "air", "tissue": "air", "centre": (-150.0, -150.0), "radius": 15.0, "depth": (0.0, 300.0)},
    {"name": "subcutaneous_fat", "tissue": "fat", "centre": (0.0, -106.0), "radius": 8.0, "depth": (0.0, 300.0)},
    {"name": "paraspinal_muscle", "tissue": "soft_tissue", "centre": (-45.0, 88.0), "radius": 7.0, "depth": (0.0, 300.0)},
    {"name": "liver", "tissue": "liver", "centre": (-45.0, 30.0), "radius": 18.0, "depth": (195.0, 255.0)},
    {"name": "descending_aorta", "tissue": "blood", "centre": (24.0, 36.0), "radius": 7.0, "depth": (60.0, 300.0)},
)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Geometry:
    """Sampling of the fixed phantom space."""

    slices: int = DEFAULT_SLICES
    size: int = DEFAULT_SIZE

    def __post_init__(self) -> None:
        if self.slices < 2 or self.size < 32:
            raise ValueError("need at least 2 slices of 32x32")

    @property
    def pixel_spacing(self) -> float:
        return round(FOV_MM / self.size, 6)

    @property
    def slice_spacing(self) -> float:
        return round(Z_EXTENT_MM / self.slices, 6)

    @property
    def origin(self) -> float:
        """x (and y) of the centre of pixel 0."""
        return round(-self.pixel_spacing * self.size / 2, 6)

    def depth(self, index: int) -> float:
        return round(index * self.slice_spacing, 6)

    def z(self, index: int) -> float:
        return -self.depth(index) + 0.0

    def position(self, index: int) -> list[float]:
        return [self.origin, self.origin, self.z(index)]

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """(col, row) of a patient (x, y) in mm."""
        ps = self.pixel_spacing
        return ((x - self.origin) / ps, (y - self.origin) / ps)

    def to_mm(self, col: float, row: float) -> tuple[float, float]:
        ps = self.pixel_spacing
        return (round(self.origin + col * ps, 6), round(self.origin + row * ps, 6))

    def nearest_slice(self, depth: float) -> int:
        return int(min(self.slices - 1, max(0, round(depth / self.slice_spacing))))

    def snap(self, x: float, y: float, depth: float) -> tuple[int, int, int]:
        col, row = self.to_pixel(x, y)
        return int(round(col)), int(round(row)), self.nearest_slice(depth)


def _fmt(value: float) -> str:
    """A DS string (at most 16 characters) for a value rounded to 6 decimals."""
    text = repr(round(float(value), 6) + 0.0)
    if text.endswith(".0"):
        text = text[:-2]
    return text[:16]


# --------------------------------------------------------------------------- ground truth


def _check_timepoint(timepoint: str) -> None:
    if timepoint not in TIMEPOINTS:
        raise ValueError(f"timepoint must be one of {TIMEPOINTS}, not {timepoint!r}")


def phantom_lesions(
    timepoint: str = "baseline",
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    include_absent: bool = False,
) -> list[dict]:
    """The lesions present at ``timepoint``, with their true geometry.

    Each dict has: id, label, organ, nodal, role (target / non_target / new),
    present, centre_mm [x, y, z], centre_px {col, row}, slice_index,
    instance_number, diameter_mm (longest axial diameter), long_axis_mm,
    short_axis_mm, recist_mm (long axis, or short axis for a node),
    long_axis_endpoints_px / short_axis_endpoints_px ([[col, row], [col, row]]
    on the centre slice: draw a line between them to measure), expected_hu,
    background_hu. Absent lesions (diameter 0) are only listed with
    ``include_absent=True``.
    """
    _check_timepoint(timepoint)
    geo = Geometry(slices, size)
    ps = geo.pixel_spacing
    out = []
    for les in _LESIONS:
        long_mm, short_mm = les["size"][timepoint]
        present = long_mm > 0
        if not present and not include_absent:
            continue
        x, y, depth = les["centre"]
        col, row, index = geo.snap(x, y, depth)
        cx, cy = geo.to_mm(col, row)
        half_l = long_mm / 2 / ps
        half_s = short_mm / 2 / ps
        out.append(
            {
                "id": les["id"],
                "label": les["label"],
                "organ": les["organ"],
                "nodal": les["nodal"],
                "role": les["role"],
                "present": present,
                "shape": "ellipsoid" if les["nodal"] else "sphere",
                "centre_mm": [cx, cy, geo.z(index)],
                "centre_px": {"col": col, "row": row},
                "slice_index": index,
                "instance_number": index + 1,
                "diameter_mm": long_mm,
                "long_axis_mm": long_mm,
                "short_axis_mm": short_mm,
                "z_extent_mm": short_mm,
                "recist_mm": short_mm if les["nodal"] else long_mm,
                "long_axis_direction": "row (patient x)",
                "short_axis_direction": "column (patient y)",
                "long_axis_endpoints_px": [[round(col - half_l, 3), row], [round(col + half_l, 3), row]],
                "short_axis_endpoints_px": [[col, round(row - half_s, 3)], [col, round(row + half_s, 3)]],
                "expected_hu": les["hu"],
                "background": les["background"],
                "background_hu": TISSUE_HU[les["background"]],
            }
        )
    return out


def uniform_regions(
    *, slices: int = DEFAULT_SLICES, size: int = DEFAULT_SIZE, noise_sigma: float = DEFAULT_NOISE_SIGMA
) -> list[dict]:
    """Cylindrical regions of one flat tissue, identical in both studies.

    Every pixel whose centre lies within ``radius_px`` of ``centre_px`` on a
    slice in [first_slice, last_slice] is ``expected_hu`` plus zero-mean noise,
    so the mean of such a disc (``pixels_per_slice`` pixels) is expected_hu
    give or take ``noise_sem_hu`` = sigma / sqrt(pixels) (one standard error);
    pool several slices for a tighter mean. Without noise every pixel is exact.
    """
    geo = Geometry(slices, size)
    idx = np.arange(size, dtype=np.float64)
    out = []
    for reg in _UNIFORM_REGIONS:
        col, row = (round(v, 3) for v in geo.to_pixel(*reg["centre"]))
        r_px = round(reg["radius"] / geo.pixel_spacing, 3)
        count = int((((idx[None, :] - col) ** 2 + (idx[:, None] - row) ** 2) <= r_px * r_px).sum())
        lo, hi = reg["depth"]
        first = max(0, math.ceil(lo / geo.slice_spacing - 1e-9))
        last = min(slices - 1, math.floor(hi / geo.slice_spacing + 1e-9))
        out.append(
            {
                "name": reg["name"],
                "tissue": reg["tissue"],
                "expected_hu": TISSUE_HU[reg["tissue"]],
                "centre_mm": list(reg["centre"]),
                "radius_mm": reg["radius"],
                "centre_px": {"col": col, "row": row},
                "radius_px": r_px,
                "pixels_per_slice": count,
                "noise_sem_hu": round(noise_sigma / math.sqrt(count), 3) if count else None,
                "first_slice": first,
                "last_slice": last,
            }
        )
    return out


def recist_sums(timepoint: str) -> dict:
    """Sum of the target measurements (long axis, short axis for nodes) at ``timepoint``."""
    lesions = phantom_lesions(timepoint, include_absent=True)
    targets = {les["id"]: les["recist_mm"] for les in lesions if les["role"] == "target"}
    return {"targets_mm": targets, "sum_mm": round(sum(targets.values()), 3)}


# --------------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, float, float]:
    geo = Geometry(2, size)
    coords = (geo.origin + np.arange(size) * geo.pixel_spacing).astype(np.float32)
    return coords, geo.origin, geo.pixel_spacing


class _Canvas:
    """One slice of HU values being painted, with partial-volume blending."""

    def __init__(self, size: int, hu: float):
        self.coords, self.origin, self.ps = _grid(size)
        self.size = size
        self.img = np.full((size, size), hu, dtype=np.float32)

    def _window(self, cx: float, cy: float, rx: float, ry: float):
        ps, o = self.ps, self.origin
        c0 = max(0, int(math.floor((cx - rx - o) / ps)) - 1)
        c1 = min(self.size, int(math.ceil((cx + rx - o) / ps)) + 2)
        r0 = max(0, int(math.floor((cy - ry - o) / ps)) - 1)
        r1 = min(self.size, int(math.ceil((cy + ry - o) / ps)) + 2)
        if c0 >= c1 or r0 >= r1:
            return None
        dx = self.coords[c0:c1][None, :] - np.float32(cx)
        dy = self.coords[r0:r1][:, None] - np.float32(cy)
        return (slice(r0, r1), slice(c0, c1)), dx, dy

    def ellipse_fraction(self, cx: float, cy: float, a: float, b: float):
        """(window, fraction) of an axis-aligned ellipse, 0.5 on its boundary."""
        if a <= 0 or b <= 0:
            return None
        win = self._window(cx, cy, a, b)
        if win is None:
            return None
        sl, dx, dy = win
        dist = np.sqrt(dx * dx + dy * dy)
        rho = np.sqrt((dx / a) ** 2 + (dy / b) ** 2)
        # signed distance to the boundary along the ray from the centre (exact
        # for circles and on the axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = np.where(rho > 0, dist * (1.0 / rho - 1.0), min(a, b))
        frac = np.clip(sd / self.ps + 0.5, 0.0, 1.0).astype(np.float32)
        return sl, frac

    def blend(self, sl, frac, hu) -> None:
        region = self.img[sl]
        region += frac * (hu - region)

    def ellipse(self, cx: float, cy: float, a: float, b: float, hu: float) -> None:
        got = self.ellipse_fraction(cx, cy, a, b)
        if got is not None:
            self.blend(got[0], got[1], hu)

    def circle(self, cx: float, cy: float, r: float, hu: float) -> None:
        self.ellipse(cx, cy, r, r, hu)


def _ramp(value: float, lo: float, hi: float) -> float:
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))


# Outer body and inner (muscle) ellipses: (cx, cy, a, b)
_BODY = (0.0, 0.0, 165.0, 120.0)
_MUSCLE = (0.0, 8.0, 145.0, 100.0)
_LUNG_CENTRES = {"right": (-82.0, 0.0), "left": (82.0, 0.0)}
_LUNG_AXES = (48.0, 74.0)
_LUNG_BASE = {"right": 180.0, "left": 195.0}


def _lung_scale(side: str, depth: float) -> float:
    top = math.sqrt(_ramp(depth, 8.0, 53.0))
    bottom = math.sqrt(_ramp(_LUNG_BASE[side] - depth, 0.0, 35.0))
    return top * bottom


@functools.lru_cache(maxsize=1)
def _vessels() -> tuple[tuple[float, ...], ...]:
    """Fixed lung vessel tree: (x0, y0, d0, r0, x1, y1, d1, r1, side) segments."""
    rng = np.random.default_rng(20240108)
    lung_lesions = [
        (les["centre"], max(max(les["size"].values())) / 2)
        for les in _LESIONS
        if les["organ"] == "lung"
    ]

    def clear(p0, p1) -> bool:
        p0, p1 = np.asarray(p0), np.asarray(p1)
        seg = p1 - p0
        for centre, radius in lung_lesions:
            c = np.asarray(centre)
            t = float(np.clip(np.dot(c - p0, seg) / np.dot(seg, seg), 0, 1))
            if np.linalg.norm(p0 + t * seg - c) < radius + 6.0:
                return False
        return True

    segments = []
    for side, sign in (("right", -1.0), ("left", 1.0)):
        lx, ly = _LUNG_CENTRES[side]
        hilum = (sign * 42.0, -4.0, 85.0)
        made = 0
        tries = 0
        while made < 14 and tries < 500:
            tries += 1
            depth = float(rng.uniform(25.0, _LUNG_BASE[side] - 15.0))
            if abs(depth - hilum[2]) < 20.0:
                continue
            scale = _lung_scale(side, depth)
            angle = float(rng.uniform(0, 2 * math.pi))
            u = float(rng.uniform(0.45, 0.85)) * scale
            end = (lx + u * _LUNG_AXES[0] * math.cos(angle), ly + u * _LUNG_AXES[1] * math.sin(angle), depth)
            mid_t = 0.5
            mid = tuple(hilum[k] + mid_t * (end[k] - hilum[k]) for k in range(3))
            # a side branch from the middle of the vessel
            b_angle = angle + float(rng.uniform(-0.9, 0.9))
            b_depth = float(np.clip(depth + rng.uniform(-30.0, 30.0), 20.0, _LUNG_BASE[side] - 15.0))
            b_u = float(rng.uniform(0.45, 0.85)) * _lung_scale(side, b_depth)
            branch_end = (
                lx + b_u * _LUNG_AXES[0] * math.cos(b_angle),
                ly + b_u * _LUNG_AXES[1] * math.sin(b_angle),
                b_depth,
            )
            if abs(b_depth - mid[2]) < 8.0:
                continue
            if not (clear(hilum, end) and clear(mid, branch_end)):
                continue
            segments.append((*hilum, 3.5, *end, 0.8, sign))
            segments.append((*mid, 2.0, *branch_end, 0.7, sign))
            made += 1
    return tuple(segments)


def _lung_texture(x: np.ndarray, y: np.ndarray, depth: float) -> np.ndarray:
    """Smooth, deterministic parenchymal texture in HU (zero mean over many periods)."""
    tex = (
        6.0 * np.sin(x * 0.29 + y * 0.17 + depth * 0.21)
        + 5.0 * np.sin(x * -0.13 + y * 0.37 + depth * 0.11 + 1.3)
        + 4.0 * np.sin(x * 0.41 - y * 0.23 - depth * 0.31 + 2.1)
    )
    return tex.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _rib_ring(size: int):
    """Pixels of the chest-wall ring where ribs run, with their angle and radial fraction."""
    coords, _, ps = _grid(size)
    cx, cy, a, b = _MUSCLE
    X = coords[None, :]
    Y = coords[:, None]
    rho = np.sqrt((X - cx) ** 2 / a**2 + (Y - cy) ** 2 / b**2)
    rows, cols = np.nonzero((rho > 0.90) & (rho < 1.0))
    xs = coords[cols]
    ys = coords[rows]
    theta = np.arctan2(np.abs(xs - cx), ys - cy) / math.pi  # 0 posterior .. 1 anterior
    r = rho[rows, cols]
    # radial partial volume: band 0.925..0.975 of the ellipse, ~125 mm mean radius
    sd = np.minimum(r - 0.925, 0.975 - r) * 125.0
    frac = np.clip(sd / ps + 0.5, 0.0, 1.0).astype(np.float32)
    keep = frac > 0
    return rows[keep], cols[keep], theta[keep].astype(np.float32), frac[keep]


def _paint_ribs(canvas: _Canvas, depth: float) -> None:
    rows, cols, theta, frac = _rib_ring(canvas.size)
    visible = np.zeros(theta.shape, dtype=bool)
    for k in range(12):
        d_k = 12.0 + 17.0 * k
        t_end = 0.85 if k < 10 else 0.6
        # the rib descends 45 mm from its posterior (theta 0.22) to its anterior end
        centre_depth = d_k + 45.0 * (theta - 0.22) / 0.63
        visible |= (theta >= 0.22) & (theta <= t_end) & (np.abs(depth - centre_depth) < 5.0)
    if visible.any():
        r, c, f = rows[visible], cols[visible], frac[visible]
        region = canvas.img[r, c]
        canvas.img[r, c] = region + f * (TISSUE_HU["rib"] - region)


def _paint_spine(canvas: _Canvas, depth: float) -> None:
    H = TISSUE_HU
    # posterior arch (annulus around the canal), processes
    canvas.circle(0.0, 88.0, 13.0, H["rib"])
    canvas.ellipse(0.0, 104.0, 4.0, 8.0, H["rib"])
    canvas.ellipse(-22.0, 85.0, 10.0, 4.0, H["rib"])
    canvas.ellipse(22.0, 85.0, 10.0, 4.0, H["rib"])
    canvas.circle(0.0, 88.0, 8.0, H["csf"])
    # vertebral bodies 25 mm high separated by 5 mm discs
    if (depth % 30.0) >= 25.0:
        canvas.circle(0.0, 60.0, 18.0, H["disc"])
    else:
        canvas.circle(0.0, 60.0, 18.0, H["cortical_bone"])
        canvas.circle(0.0, 60.0, 15.0, H["cancellous_bone"])


def _paint_lungs(canvas: _Canvas, depth: float) -> None:
    H = TISSUE_HU
    for side, (lx, ly) in _LUNG_CENTRES.items():
        s = _lung_scale(side, depth)
        if s <= 0:
            continue
        got = canvas.ellipse_fraction(lx, ly, _LUNG_AXES[0] * s, _LUNG_AXES[1] * s)
        if got is None:
            continue
        sl, lung_frac = got
        xs = canvas.coords[sl[1]][None, :]
        ys = canvas.coords[sl[0]][:, None]
        target = H["lung"] + _lung_texture(xs, ys, depth)
        canvas.blend(sl, lung_frac, target)
        # vessels inside this lung
        sign = -1.0 if side == "right" else 1.0
        for x0, y0, d0, r0, x1, y1, d1, r1, vs in _vessels():
            if vs != sign or not (min(d0, d1) <= depth <= max(d0, d1)):
                continue
            t = (depth - d0) / (d1 - d0)
            vx, vy, vr = x0 + t * (x1 - x0), y0 + t * (y1 - y0), r0 + t * (r1 - r0)
            v = canvas.ellipse_fraction(vx, vy, vr, vr)
            if v is None:
                continue
            vsl, vfrac = v
            # restrict to the lung: lung fraction on the vessel window
            rs = slice(max(vsl[0].start, sl[0].start), min(vsl[0].stop, sl[0].stop))
            cs = slice(max(vsl[1].start, sl[1].start), min(vsl[1].stop, sl[1].stop))
            if rs.start >= rs.stop or cs.start >= cs.stop:
                continue
            f = (
                vfrac[rs.start - vsl[0].start : rs.stop - vsl[0].start, cs.start - vsl[1].start : cs.stop - vsl[1].start]
                * lung_frac[rs.start - sl[0].start : rs.stop - sl[0].start, cs.start - sl[1].start : cs.stop - sl[1].start]
            )
            canvas.blend((rs, cs), f, H["blood"])


def _paint_airways(canvas: _Canvas, depth: float) -> None:
    H = TISSUE_HU
    if depth <= 62.0:
        canvas.circle(0.0, -20.0, 11.0, H["soft_tissue"])
        canvas.circle(0.0, -20.0, 9.0, H["air"])
    if 58.0 <= depth <= 88.0:
        t = (depth - 58.0) / 30.0
        for sign in (-1.0, 1.0):
            bx, by = sign * 34.0 * t, -20.0 + 12.0 * t
            canvas.circle(bx, by, 6.0, H["soft_tissue"])
            canvas.circle(bx, by, 4.5, H["air"])


def _paint_aorta(canvas: _Canvas, depth: float) -> None:
    blood = TISSUE_HU["blood"]
    if depth >= 45.0:  # descending (thoracic, then abdominal) aorta
        canvas.circle(24.0, 36.0, 12.0, blood)
    if 45.0 <= depth <= 105.0:  # ascending aorta
        canvas.circle(22.0, -50.0, 14.0, blood)
    if 30.0 <= depth < 45.0:  # arch: a band from the ascending to the descending aorta
        n = 24
        for k in range(n + 1):
            t = k / n
            canvas.circle(22.0 + 2.0 * t, -50.0 + 86.0 * t, 11.0, blood)


def _paint_lesions(canvas: _Canvas, timepoint: str, index: int, geo: Geometry) -> None:
    depth = geo.depth(index)
    for les in phantom_lesions(timepoint, slices=geo.slices, size=geo.size):
        cx, cy, _ = les["centre_mm"]
        dz = depth - geo.depth(les["slice_index"])
        c = les["short_axis_mm"] / 2  # z semi-axis
        if abs(dz) >= c:
            continue
        s = math.sqrt(1.0 - (dz / c) ** 2)
        canvas.ellipse(cx, cy, les["long_axis_mm"] / 2 * s, les["short_axis_mm"] / 2 * s, les["expected_hu"])


def make_slice_hu(
    index: int,
    timepoint: str = "baseline",
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
) -> np.ndarray:
    """Slice ``index`` (0 = most superior) as float32 HU, before quantisation."""
    _check_timepoint(timepoint)
    geo = Geometry(slices, size)
    if not 0 <= index < slices:
        raise IndexError(f"slice {index} outside 0..{slices - 1}")
    depth = geo.depth(index)
    H = TISSUE_HU
    cv = _Canvas(size, H["air"])
    cv.ellipse(*_BODY, H["fat"])
    cv.ellipse(*_MUSCLE, H["soft_tissue"])
    if 10.0 <= depth <= 95.0:  # mediastinal fat
        cv.ellipse(0.0, -15.0, 30.0, 60.0, H["fat"])
    if depth >= 190.0:  # visceral fat
        cv.ellipse(35.0, -20.0, 55.0, 50.0, H["fat"])
    if depth >= 160.0:  # liver, dome from 160 mm
        s = math.sqrt(_ramp(depth, 160.0, 190.0))
        cv.ellipse(-60.0, 0.0, 75.0 * s, 65.0 * s, H["liver"])
    if 170.0 <= depth <= 255.0:  # spleen
        s = math.sqrt(_ramp(depth, 170.0, 185.0) * _ramp(255.0 - depth, 0.0, 15.0))
        cv.ellipse(85.0, 35.0, 28.0 * s, 38.0 * s, H["spleen"])
    if depth >= 265.0:  # kidneys
        s = math.sqrt(_ramp(depth, 265.0, 280.0))
        cv.ellipse(-75.0, 60.0, 25.0 * s, 32.0 * s, H["kidney"])
        cv.ellipse(75.0, 60.0, 25.0 * s, 32.0 * s, H["kidney"])
    _paint_lungs(cv, depth)
    if 95.0 <= depth <= 175.0:  # heart
        s = math.sqrt(_ramp(depth, 95.0, 110.0) * _ramp(175.0 - depth, 0.0, 20.0))
        cv.ellipse(15.0, -35.0, 50.0 * s, 42.0 * s, H["soft_tissue"])
    if depth <= 200.0:  # esophagus
        cv.circle(-10.0, 35.0, 7.0, H["soft_tissue"])
    _paint_airways(cv, depth)
    _paint_aorta(cv, depth)
    _paint_spine(cv, depth)
    if depth >= 10.0:
        _paint_ribs(cv, depth)
    if 20.0 <= depth <= 170.0:
        cv.ellipse(0.0, -86.0, 14.0, 5.0, H["sternum"])
    _paint_lesions(cv, timepoint, index, geo)
    if noise_sigma > 0:
        rng = np.random.default_rng([int(seed), TIMEPOINTS.index(timepoint), int(index)])
        cv.img += rng.standard_normal((size, size), dtype=np.float32) * np.float32(noise_sigma)
    return cv.img


def make_slice(
    index: int,
    timepoint: str = "baseline",
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
) -> np.ndarray:
    """Slice ``index`` as int16 HU exactly as stored (rounded, clipped to -1024..3071)."""
    hu = make_slice_hu(index, timepoint, slices=slices, size=size, seed=seed, noise_sigma=noise_sigma)
    lo, hi = RESCALE_INTERCEPT, RESCALE_INTERCEPT + MAX_STORED
    return np.clip(np.rint(hu), lo, hi).astype(np.int16)


def make_volume(
    timepoint: str = "baseline",
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
) -> np.ndarray:
    """The whole study as int16 HU, shape (slices, size, size), slice 0 most superior."""
    return np.stack(
        [
            make_slice(i, timepoint, slices=slices, size=size, seed=seed, noise_sigma=noise_sigma)
            for i in range(slices)
        ]
    )


# --------------------------------------------------------------------------- DICOM


def _uid(*parts: object) -> str:
    """A deterministic ``2.25.<uuid>`` UID (ISO/IEC 9834-8) from a name-based UUID (v5).

    (pydicom's ``generate_uid(prefix=None, ...)`` ignores ``entropy_srcs`` and
    returns a random UUID, so it cannot be used here.)
    """
    name = "/".join([UID_NAMESPACE, str(PHANTOM_VERSION), *map(str, parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def study_uids(
    timepoint: str,
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
) -> dict:
    """Deterministic UIDs of one study (they depend on every generation parameter).

    Each study has its own FrameOfReferenceUID, as two real scans would, although
    the phantom sits at identical coordinates in both (no registration needed).
    """
    _check_timepoint(timepoint)
    key = (timepoint, slices, size, seed, _fmt(noise_sigma))
    return {
        "study_instance_uid": _uid("study", *key),
        "series_instance_uid": _uid("series", *key),
        "frame_of_reference_uid": _uid("frame", *key),
        "sop_instance_uids": [_uid("sop", *key, i) for i in range(slices)],
    }


def _dataset(geo: Geometry, timepoint: str, index: int, uids: dict, pixels: np.ndarray) -> Dataset:
    st = STUDIES[timepoint]
    sop_uid = uids["sop_instance_uids"][index]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = st["study_date"]
    ds.SeriesDate = st["study_date"]
    ds.AcquisitionDate = st["study_date"]
    ds.ContentDate = st["study_date"]
    ds.StudyTime = st["study_time"]
    ds.SeriesTime = st["study_time"]
    ds.AcquisitionTime = st["study_time"]
    ds.ContentTime = st["study_time"]
    ds.AccessionNumber = st["accession"]
    ds.Modality = "CT"
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = "Synthetic (no institution)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = st["description"]
    ds.SeriesDescription = f"SYNTHETIC axial {_fmt(geo.slice_spacing)} mm"
    ds.ManufacturerModelName = "viewer.phantom"
    # Patient
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19650101"
    ds.PatientSex = "O"
    ds.PatientAge = "059Y"
    ds.BodyPartExamined = "CHEST"
    ds.ImageComments = "SYNTHETIC PHANTOM - not patient data"
    # CT acquisition (nominal)
    ds.SliceThickness = _fmt(geo.slice_spacing)
    ds.KVP = "120"
    ds.SpacingBetweenSlices = _fmt(geo.slice_spacing)
    ds.DeviceSerialNumber = "PHANTOM"
    ds.SoftwareVersions = f"crossread viewer.phantom v{PHANTOM_VERSION}"
    ds.ReconstructionDiameter = _fmt(FOV_MM)
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    # Identification
    ds.StudyInstanceUID = uids["study_instance_uid"]
    ds.SeriesInstanceUID = uids["series_instance_uid"]
    ds.StudyID = st["study_id"]
    ds.SeriesNumber = 2
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    # Image plane
    ds.ImagePositionPatient = [_fmt(v) for v in geo.position(index)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = uids["frame_of_reference_uid"]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _fmt(geo.z(index))
    # Image pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = geo.size
    ds.Columns = geo.size
    ds.PixelSpacing = [_fmt(geo.pixel_spacing), _fmt(geo.pixel_spacing)]
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = ["40", "-600"]
    ds.WindowWidth = ["400", "1500"]
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenterWidthExplanation = ["SOFT TISSUE", "LUNG"]
    stored = (pixels.astype(np.int32) - RESCALE_INTERCEPT).astype("<u2")
    ds.PixelData = stored.tobytes()
    return ds


def describe_phantom(
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
    timepoints: tuple[str, ...] = TIMEPOINTS,
) -> dict:
    """The machine-readable truth written as ``phantom.json``."""
    geo = Geometry(slices, size)
    studies = {}
    for tp in timepoints:
        uids = study_uids(tp, slices=slices, size=size, seed=seed, noise_sigma=noise_sigma)
        lesions = phantom_lesions(tp, slices=slices, size=size, include_absent=True)
        for les in lesions:
            les["sop_instance_uid"] = uids["sop_instance_uids"][les["slice_index"]] if les["present"] else None
        studies[tp] = {
            "folder": tp,
            "study_instance_uid": uids["study_instance_uid"],
            "series_instance_uid": uids["series_instance_uid"],
            "frame_of_reference_uid": uids["frame_of_reference_uid"],
            "study_date": STUDIES[tp]["study_date"],
            "study_time": STUDIES[tp]["study_time"],
            "study_id": STUDIES[tp]["study_id"],
            "accession_number": STUDIES[tp]["accession"],
            "files": [f"CT_{i + 1:04d}.dcm" for i in range(slices)],
            "lesions": lesions,
            "recist": recist_sums(tp),
        }
    return {
        "synthetic": True,
        "generator": f"crossread viewer.phantom v{PHANTOM_VERSION}",
        "warning": "Synthetic phantom drawn from geometric shapes; not patient data.",
        "patient": {"id": PATIENT_ID, "name": PATIENT_NAME},
        "parameters": {"slices": slices, "size": size, "seed": seed, "noise_sigma_hu": noise_sigma},
        "geometry": {
            "rows": size,
            "columns": size,
            "pixel_spacing_mm": [geo.pixel_spacing, geo.pixel_spacing],
            "slice_spacing_mm": geo.slice_spacing,
            "slice_thickness_mm": geo.slice_spacing,
            "image_orientation_patient": [1, 0, 0, 0, 1, 0],
            "first_image_position_patient": geo.position(0),
            "last_image_position_patient": geo.position(slices - 1),
            "slice_order": "instance 1 is the most superior; z = -index * spacing",
            "pixel_to_patient": "x = origin + col * ps, y = origin + row * ps (pixel centres)",
            "origin_mm": geo.origin,
            "rescale": {"slope": 1, "intercept": RESCALE_INTERCEPT, "type": "HU"},
            "pixel_representation": 0,
            "bits_stored": BITS_STORED,
        },
        "tissues_hu": dict(TISSUE_HU),
        "uniform_regions": uniform_regions(slices=slices, size=size, noise_sigma=noise_sigma),
        "scenario": dict(SCENARIO),
        "studies": studies,
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


_OURS = re.compile(r"^(CT_\d{4,}\.dcm|phantom\.json)$")


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move the freshly written ``tmp`` to ``target``, replacing an earlier phantom only."""
    if target.exists():
        foreign = [p.name for p in target.iterdir() if not _OURS.match(p.name)]
        if foreign:
            raise FileExistsError(f"{target} holds files that are not a phantom: {foreign[:3]}")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old)
    else:
        tmp.rename(target)


def write_study(
    out_dir: Path,
    timepoint: str,
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
) -> list[Path]:
    """Write one study as ``out_dir/<timepoint>/CT_0001.dcm``... plus its ``phantom.json``.

    The folder is built beside the target and renamed into place, so readers
    never see half a series; an earlier phantom folder is replaced.
    """
    _check_timepoint(timepoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geo = Geometry(slices, size)
    uids = study_uids(timepoint, slices=slices, size=size, seed=seed, noise_sigma=noise_sigma)
    tmp = Path(tempfile.mkdtemp(prefix=f".{timepoint}.tmp-", dir=out_dir))
    try:
        names = []
        for i in range(slices):
            pixels = make_slice(i, timepoint, slices=slices, size=size, seed=seed, noise_sigma=noise_sigma)
            ds = _dataset(geo, timepoint, i, uids, pixels)
            name = f"CT_{i + 1:04d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            names.append(name)
        desc = describe_phantom(
            slices=slices, size=size, seed=seed, noise_sigma=noise_sigma, timepoints=(timepoint,)
        )
        _write_json(tmp / "phantom.json", desc)
        target = out_dir / timepoint
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / n for n in names]


def write_phantom_studies(
    out_dir: Path,
    *,
    slices: int = DEFAULT_SLICES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
) -> list[Path]:
    """Write the baseline and follow-up studies and ``out_dir/phantom.json``.

    Returns the DICOM files written (baseline first, in instance order).
    Running twice with the same arguments gives byte-identical files.
    """
    out_dir = Path(out_dir)
    files: list[Path] = []
    for tp in TIMEPOINTS:
        files += write_study(out_dir, tp, slices=slices, size=size, seed=seed, noise_sigma=noise_sigma)
    _write_json(
        out_dir / "phantom.json",
        describe_phantom(slices=slices, size=size, seed=seed, noise_sigma=noise_sigma),
    )
    return files
