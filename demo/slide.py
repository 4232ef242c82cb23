"""A synthetic VL Whole Slide Microscopy pyramid for the demo and the tests (JPEG tiles). Pure: no Django."""

from __future__ import annotations

import io
import math
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, JPEGBaseline8Bit, VLWholeSlideMicroscopyImageStorage


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
