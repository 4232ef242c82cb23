"""DICOM VL Whole Slide Microscopy images: tiles served from their stored frames. No Django here.

A slide is a pyramid: one instance per resolution level, each a TILED_FULL multi-frame image whose
frames are the tiles of its Total Pixel Matrix in row-major order (PS3.3 C.8.12.4.1.1). A Deep Zoom
tile at a level that a stored instance has is one stored frame, read from the file at its offset
and sent as stored when the client asks for the stored format, without decoding anything. Other
levels are made from the nearest finer stored level by decoding only the tiles they cover.

:func:`write_synthetic_slide` makes a small documented-synthetic pyramid from the real encoded test
tile that wsidicom-data ships, because no PyPI corpus carries a whole-slide DICOM file.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, JPEGBaseline8Bit, VLWholeSlideMicroscopyImageStorage

WSI_SOP_CLASS = str(VLWholeSlideMicroscopyImageStorage)


class SlideError(ValueError):
    """The instance is not a tiled slide level this module can serve."""


@dataclass(frozen=True)
class SlideLevel:
    """One stored resolution level: its size, its tile size, and where each tile's bytes lie."""

    path: Path
    sop_instance_uid: str
    width: int  # TotalPixelMatrixColumns
    height: int  # TotalPixelMatrixRows
    tile_width: int  # Columns
    tile_height: int  # Rows
    transfer_syntax_uid: str
    photometric: str
    #: (file offset, length) of each frame's encapsulated bytes, in frame order.
    frames: tuple[tuple[int, int], ...]

    @property
    def tiles_across(self) -> int:
        return math.ceil(self.width / self.tile_width)

    @property
    def tiles_down(self) -> int:
        return math.ceil(self.height / self.tile_height)

    def frame_index(self, col: int, row: int) -> int:
        """0-based frame of tile (col, row) in TILED_FULL order (single focal plane and path)."""
        if not (0 <= col < self.tiles_across and 0 <= row < self.tiles_down):
            raise SlideError("The tile is outside the slide level.")
        return row * self.tiles_across + col

    def read_tile(self, col: int, row: int) -> bytes:
        """The stored bytes of tile (col, row), as encoded (e.g. a JPEG), read from its offset."""
        offset, length = self.frames[self.frame_index(col, row)]
        with self.path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        if len(data) != length:
            raise SlideError("The stored slide is truncated.")
        return data

    def decode_tile(self, col: int, row: int) -> np.ndarray:
        """One tile as RGB uint8 (H, W, 3); edge tiles keep their full stored size."""
        with Image.open(io.BytesIO(self.read_tile(col, row))) as picture:
            return np.asarray(picture.convert("RGB"))


def is_slide(ds: Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) == WSI_SOP_CLASS and "TotalPixelMatrixColumns" in ds


def read_level(path: Path) -> SlideLevel:
    """Index a stored slide level: read its header and walk its pixel data items, not the pixels."""
    with path.open("rb") as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        if not is_slide(ds):
            raise SlideError("Not a VL Whole Slide Microscopy image.")
        if str(ds.get("DimensionOrganizationType", "TILED_FULL")) != "TILED_FULL":
            raise SlideError("Only TILED_FULL slides are served from their tiles.")
        syntax = ds.file_meta.TransferSyntaxUID
        if not syntax.is_encapsulated:
            raise SlideError("Only slides with compressed (encapsulated) tiles are served from their tiles.")
        frames = _frame_positions(fh, int(ds.get("NumberOfFrames", 1)))
    return SlideLevel(
        path=path,
        sop_instance_uid=str(ds.SOPInstanceUID),
        width=int(ds.TotalPixelMatrixColumns),
        height=int(ds.TotalPixelMatrixRows),
        tile_width=int(ds.Columns),
        tile_height=int(ds.Rows),
        transfer_syntax_uid=str(syntax),
        photometric=str(ds.PhotometricInterpretation),
        frames=frames,
    )


def _frame_positions(fh: io.BufferedReader, number_of_frames: int) -> tuple[tuple[int, int], ...]:
    """Walk the encapsulated Pixel Data items (PS3.5 A.4) from the file position of its tag.

    One fragment per frame is required (what slide writers do); the offset table is skipped.
    """
    header = fh.read(12)  # (7FE0,0010) OB 0000 FFFFFFFF
    if len(header) < 12 or struct.unpack("<HH", header[:4]) != (0x7FE0, 0x0010):
        raise SlideError("Pixel Data is not where the header ends.")
    positions: list[tuple[int, int]] = []
    first = True
    while True:
        item = fh.read(8)
        if len(item) < 8:
            raise SlideError("The stored slide is truncated.")
        group, element, length = struct.unpack("<HHI", item)
        if (group, element) == (0xFFFE, 0xE0DD):
            break
        if (group, element) != (0xFFFE, 0xE000):
            raise SlideError("Damaged encapsulated Pixel Data.")
        if not first:
            positions.append((fh.tell(), length))
        first = False
        fh.seek(length, io.SEEK_CUR)
    if len(positions) != number_of_frames:
        raise SlideError("Slides with several fragments per frame are not served from their tiles.")
    return tuple(positions)


@dataclass(frozen=True)
class Pyramid:
    """The stored levels of one slide, finest first, laid out as a Deep Zoom pyramid.

    Deep Zoom level ``max_level`` is the finest stored level; each level below halves the size.
    """

    levels: tuple[SlideLevel, ...]

    def __post_init__(self) -> None:
        if not self.levels:
            raise SlideError("A slide needs at least one level.")

    @property
    def base(self) -> SlideLevel:
        return self.levels[0]

    @property
    def max_level(self) -> int:
        return math.ceil(math.log2(max(self.base.width, self.base.height)))

    @property
    def tile_size(self) -> int:
        return self.base.tile_width

    def level_size(self, level: int) -> tuple[int, int]:
        if not 0 <= level <= self.max_level:
            raise SlideError(f"The level must be within 0..{self.max_level}.")
        factor = 2 ** (self.max_level - level)
        return -(-self.base.width // factor), -(-self.base.height // factor)

    def stored_for(self, level: int) -> tuple[SlideLevel, int]:
        """The finest-needed stored level and the extra down-scaling factor (1 = serve as stored)."""
        factor = 2 ** (self.max_level - level)
        best = self.base
        for stored in self.levels:
            downsample = round(self.base.width / stored.width)
            if downsample <= factor and stored.tile_width == self.tile_size:
                best = stored
        return best, factor // round(self.base.width / best.width)


def compose_tile(stored: SlideLevel, scale: int, col: int, row: int, tile_size: int, level_size: tuple[int, int]) -> np.ndarray:
    """Deep Zoom tile (col, row) of a level ``scale`` times coarser than ``stored``, decoding only
    the stored tiles it covers."""
    width, height = level_size
    x0, y0 = col * tile_size, row * tile_size
    if x0 >= width or y0 >= height:
        raise SlideError("The tile is outside the slide level.")
    out_w, out_h = min(tile_size, width - x0), min(tile_size, height - y0)
    sx0, sy0 = x0 * scale, y0 * scale
    sx1, sy1 = min((x0 + out_w) * scale, stored.width), min((y0 + out_h) * scale, stored.height)
    canvas = np.zeros((sy1 - sy0, sx1 - sx0, 3), dtype=np.uint8)
    for tile_row in range(sy0 // stored.tile_height, (sy1 - 1) // stored.tile_height + 1):
        for tile_col in range(sx0 // stored.tile_width, (sx1 - 1) // stored.tile_width + 1):
            pixels = stored.decode_tile(tile_col, tile_row)
            tx, ty = tile_col * stored.tile_width, tile_row * stored.tile_height
            left, top = max(sx0, tx), max(sy0, ty)
            right, bottom = min(sx1, tx + stored.tile_width), min(sy1, ty + stored.tile_height)
            canvas[top - sy0 : bottom - sy0, left - sx0 : right - sx0] = pixels[top - ty : bottom - ty, left - tx : right - tx]
    if scale == 1:
        return canvas
    return np.asarray(Image.fromarray(canvas).resize((out_w, out_h), Image.Resampling.BOX))


# --------------------------------------------------------------------------- a synthetic slide


def write_synthetic_slide(
    out_dir: Path, *, texture: Path, width: int = 2048, height: int = 1536, tile: int = 256, quality: int = 90
) -> list[Path]:
    """Write a synthetic VL Whole Slide Microscopy pyramid (levels down to one tile), JPEG tiles.

    The slide is ``texture`` (e.g. wsidicom-data's test tile) repeated, with a coloured grid so
    that tile positions are visible. Deterministic: the same arguments give the same bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    base = _synthetic_pixels(texture, width, height)
    study, series, frame_of_reference = (_uid("study"), _uid("series"), _uid("for"))
    paths = []
    level, image = 0, base
    while True:
        h, w = image.shape[:2]
        ds = _slide_level(image, tile, quality, level, study, series, frame_of_reference, base.shape[1])
        path = out_dir / f"slide_level{level}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        if w <= tile and h <= tile:
            return paths
        image = np.asarray(Image.fromarray(image).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BOX))
        level += 1


def _synthetic_pixels(texture: Path, width: int, height: int) -> np.ndarray:
    with Image.open(texture) as picture:
        tile = np.asarray(picture.convert("RGB"))
    reps = (math.ceil(height / tile.shape[0]), math.ceil(width / tile.shape[1]), 1)
    image = np.tile(tile, reps)[:height, :width].copy()
    image[::128, :] = (30, 90, 200)
    image[:, ::128] = (30, 90, 200)
    return image


def _uid(name: str) -> str:
    return pydicom.uid.generate_uid(prefix="2.25.", entropy_srcs=["crossread-synthetic-slide", name])


def _slide_level(
    image: np.ndarray, tile: int, quality: int, level: int, study: str, series: str, frame_of_reference: str,
    base_width: int,
) -> Dataset:
    height, width = image.shape[:2]
    frames: list[bytes] = []
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            piece = np.zeros((tile, tile, 3), dtype=np.uint8)
            part = image[top : top + tile, left : left + tile]
            piece[: part.shape[0], : part.shape[1]] = part
            buffer = io.BytesIO()
            Image.fromarray(piece).save(buffer, "JPEG", quality=quality, subsampling="4:2:2")
            frames.append(buffer.getvalue())
    spacing_mm = 0.00025 * (base_width / width)  # 0.25 µm at the finest level
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.SOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(_uid(f"instance-{level}"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
    ds.PatientName, ds.PatientID = "Slide^Synthetic", "SLIDE-001"
    ds.PatientBirthDate, ds.PatientSex = "", "O"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = date(2024, 1, 15).strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = "", "SLIDE", ""
    ds.StudyDescription = "Synthetic whole-slide image (Crossread demo)"
    ds.SeriesDescription = "Synthetic slide from the wsidicom-data test tile"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SM", 1, level + 1
    ds.Manufacturer = "Crossread synthetic slide"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"] if level == 0 else ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"]
    ds.ContainerIdentifier = "SLIDE-001"
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = width, height
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.Rows = ds.Columns = tile
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight, ds.ImagedVolumeDepth = width * spacing_mm, height * spacing_mm, 0.001
    measures = Dataset()
    measures.PixelSpacing = [spacing_mm, spacing_mm]
    measures.SliceThickness = 0.001
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    return ds


def slide_levels_from(paths: Sequence[Path]) -> Pyramid:
    """The pyramid of the given stored level files, finest first."""
    levels = sorted((read_level(p) for p in paths), key=lambda lv: -lv.width)
    return Pyramid(tuple(levels))
