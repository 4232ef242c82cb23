"""The pipeline against an independent PS3.3 reference, on every image of the real corpus."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import get_decoder

from tests.imaging import reference
from demo import corpus
from viewer import imaging
from viewer.imaging import codecs


@functools.cache
def load(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path)


def _image_files() -> list[Path]:
    files = []
    for path in corpus.iter_part10_files():
        try:
            header = pydicom.dcmread(path, defer_size=256)
        except Exception:  # noqa: BLE001 - unreadable files are covered in test_errors
            continue
        if "PixelData" in header:
            files.append(path)
    return files


IMAGES = _image_files()
IDS = [f"{path.parent.name}/{path.name}" for path in IMAGES]


def _last_frame(ds: pydicom.Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except ValueError:
        return 1


def _reference_or_none(ds: pydicom.Dataset, frame: int, explicit=None) -> np.ndarray | None:
    """The reference rendering, or None when pydicom itself cannot decode the frame."""
    try:
        samples, photometric = reference.decode(ds, frame)
    except Exception:  # noqa: BLE001 - any decoder failure: the pipeline must refuse too
        return None
    if samples.ndim == 3 or photometric == "PALETTE COLOR":
        return reference.color(ds, frame)
    return reference.grey(ds, frame, explicit)


def _assert_within_one(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == np.uint8
    assert actual.shape == expected.shape
    diff = np.abs(actual.astype(np.float64) - np.rint(expected))
    assert diff.max() <= 1, f"{int((diff > 1).sum())} pixels differ by more than 1 (max {diff.max()})"


# (source, file, transfer-syntax family, decoded photometric kind, frames, rendered shape)
REFERENCE_TABLE = [
    ("pydicom", "CT_small.dcm", "native", "grey", 1, (128, 128)),
    ("pydicom", "MR_small_bigendian.dcm", "native", "grey", 1, (64, 64)),
    ("pydicom", "MR_small_implicit.dcm", "native", "grey", 1, (64, 64)),
    ("pydicom", "image_dfl.dcm", "deflate", "grey", 1, (512, 512)),
    ("pydicom", "MR_small_RLE.dcm", "rle", "grey", 1, (64, 64)),
    ("pydicom", "SC_rgb_jpeg_dcmtk.dcm", "jpeg", "color", 1, (100, 100, 3)),
    ("pydicom", "JPGExtended.dcm", "jpeg", "grey", 1, (1024, 256)),
    ("pydicom-data", "JPEG-LL.dcm", "jpeg", "grey", 1, (1024, 256)),
    ("pydicom", "MR_small_jpeg_ls_lossless.dcm", "jpeg-ls", "grey", 1, (64, 64)),
    ("pydicom", "JPEGLSNearLossless_16.dcm", "jpeg-ls", "grey", 1, (50, 10)),
    ("pydicom", "MR_small_jp2klossless.dcm", "jpeg2000", "grey", 1, (64, 64)),
    ("pydicom", "693_J2KI.dcm", "jpeg2000", "grey", 1, (512, 512)),
    ("pydicom-data", "RG1_UNCI.dcm", "native", "grey", 1, (1955, 1841)),  # MONOCHROME1
    ("pydicom-data", "OBXXXX1A.dcm", "native", "color", 1, (600, 800, 3)),  # PALETTE COLOR 8-bit
    ("pydicom-data", "gdcm-US-ALOKA-16.dcm", "native", "color", 1, (480, 640, 3)),  # 16-bit palette
    ("pydicom-data", "SC_ybr_full_uncompressed.dcm", "native", "color", 1, (100, 100, 3)),
    ("pydicom", "SC_ybr_full_422_uncompressed.dcm", "native", "color", 1, (100, 100, 3)),
    ("pydicom-data", "color-pl.dcm", "native", "color", 1, (120, 256, 3)),  # planar config 1
    ("pydicom-data", "emri_small.dcm", "native", "grey", 10, (64, 64)),
    ("pydicom-data", "color3d_jpeg_baseline.dcm", "jpeg", "color", 120, (480, 640, 3)),
    ("pydicom-data", "mlut_18.dcm", "native", "grey", 1, (512, 512)),  # Modality LUT Sequence
    ("pydicom-data", "vlut_04.dcm", "native", "grey", 1, (512, 512)),  # VOI LUT Sequence
    ("pydicom", "liver_1frame.dcm", "native", "grey", 1, (512, 512)),  # 1-bit
    ("pydicom", "rtdose.dcm", "native", "grey", 15, (10, 10)),  # 32-bit, 15 frames
    ("deid-data", "humans/ctbrain1.dcm", "jpeg", "color", 1, (456, 510, 3)),
]


@pytest.mark.parametrize(
    "source,name,family,kind,frames,shape",
    REFERENCE_TABLE,
    ids=[row[1] for row in REFERENCE_TABLE],
)
def test_reference_table(source, name, family, kind, frames, shape):
    ds = load(corpus.file(source, name))
    header = imaging.ImageHeader.from_dataset(ds)
    assert imaging.TRANSFER_SYNTAX_FAMILIES[header.transfer_syntax] == family
    assert header.number_of_frames == frames
    prepared = imaging.prepare_frame(ds, frames)
    assert prepared.is_color == (kind == "color")
    rendered = imaging.render_frame(ds, frames)
    assert rendered.shape == shape
    expected = _reference_or_none(ds, frames)
    assert expected is not None
    _assert_within_one(rendered, expected)
    # PNG round trip is lossless.
    decoded = np.asarray(Image.open(io.BytesIO(imaging.encode(rendered, "image/png"))))
    assert np.array_equal(decoded, rendered)


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_file_voi_matches_reference(path):
    ds = load(path)
    frame = _last_frame(ds)
    expected = _reference_or_none(ds, frame)
    if expected is None:
        with pytest.raises(imaging.RenderError):
            imaging.render_frame(ds, frame)
        return
    _assert_within_one(imaging.render_frame(ds, frame), expected)


FUNCTIONS = ("linear", "linear-exact", "sigmoid")


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_explicit_window_matches_reference(path):
    ds = load(path)
    frame = _last_frame(ds)
    try:
        stored, photometric = reference.decode(ds, frame)
    except Exception:  # noqa: BLE001 - undecodable: covered by test_file_voi_matches_reference
        pytest.skip("pydicom cannot decode this file")
    values = reference.modality(ds, stored, frame)
    low, high = float(values.min()), float(values.max())
    function = FUNCTIONS[IMAGES.index(path) % 3]
    window = imaging.Window((low + high) / 2 + 0.25 * (high - low) / 2, max(1.0, (high - low) / 2), function)
    rendered = imaging.render_frame(ds, frame, window=window)
    if stored.ndim == 3 or photometric == "PALETTE COLOR":  # VOI does not apply to colour
        assert np.array_equal(rendered, imaging.render_frame(ds, frame))
        return
    expected = reference.grey(ds, frame, (window.center, window.width, function))
    _assert_within_one(rendered, expected)


def test_corpus_is_broad():
    """The corpus tests above are only meaningful if the corpus has the variety they claim."""
    photometrics = set()
    syntaxes = set()
    for path in IMAGES:
        ds = load(path)
        photometrics.add(str(ds.get("PhotometricInterpretation")))
        syntaxes.add(imaging.TRANSFER_SYNTAX_FAMILIES.get(ds.file_meta.get("TransferSyntaxUID")))
    assert {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422"} <= photometrics
    assert {"native", "deflate", "rle", "jpeg", "jpeg-ls", "jpeg2000"} <= syntaxes
    assert len(IMAGES) >= 150


@pytest.mark.parametrize(
    "center,width,function",
    [(40, 80, "linear"), (-600, 1500, "linear"), (40, 400, "linear-exact"), (50, 350, "sigmoid"), (0, 1, "linear")],
)
def test_ct_windows(center, width, function):
    ds = load(corpus.file("pydicom-data", "693_UNCI.dcm"))
    rendered = imaging.render_frame(ds, 1, window=imaging.Window(center, width, function))
    _assert_within_one(rendered, reference.grey(ds, 1, (center, width, function)))
    assert rendered.min() < rendered.max()  # the window shows something of this CT slice


def test_known_pixel_values_ct_small():
    """Hand-checked values: CT_small has slope 1, intercept -1024; C=40, W=400 linear."""
    ds = load(corpus.file("pydicom", "CT_small.dcm"))
    stored = ds.pixel_array
    rendered = imaging.render_frame(ds, 1, window=imaging.Window(40, 400))
    hu = float(stored[64, 64]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.clip(((hu - 39.5) / 399 + 0.5) * 255, 0, 255)
    assert abs(int(rendered[64, 64]) - expected) <= 0.5 + 1e-9
    # HU below -160 is black, above 240 white
    assert (rendered[(stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)) <= -161] == 0).all()


def test_monochrome1_is_inverted():
    ds = load(corpus.file("pydicom-data", "RG1_UNCI.dcm"))
    as_mono1 = imaging.render_frame(ds, 1)
    ds2 = pydicom.dcmread(corpus.file("pydicom-data", "RG1_UNCI.dcm"))
    ds2.PhotometricInterpretation = "MONOCHROME2"
    assert np.array_equal(as_mono1, 255 - imaging.render_frame(ds2, 1))


@pytest.mark.parametrize(
    "first,second",
    [
        ("MR_small.dcm", "MR_small_bigendian.dcm"),
        ("MR_small.dcm", "MR_small_RLE.dcm"),
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
        ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
    ],
)
def test_lossless_syntaxes_render_identically(first, second):
    a = imaging.render_frame(load(corpus.file("pydicom", first)), 1)
    b = imaging.render_frame(load(corpus.file("pydicom", second)), 1)
    assert np.array_equal(a, b)


def test_planar_configuration_and_endianness():
    planar = imaging.render_frame(load(corpus.file("pydicom-data", "color-pl.dcm")), 1)
    interleaved = imaging.render_frame(load(corpus.file("pydicom-data", "color-px.dcm")), 1)
    assert np.array_equal(planar, interleaved)
    little = imaging.render_frame(load(corpus.file("pydicom-data", "OBXXXX1A_2frame.dcm")), 2)
    big = imaging.render_frame(load(corpus.file("pydicom-data", "OBXXXX1A_expb_2frame.dcm")), 2)
    assert np.array_equal(little, big)


def test_frames_differ_in_multiframe():
    ds = load(corpus.file("pydicom-data", "emri_small.dcm"))
    window = imaging.Window(500, 1000)
    frames = [imaging.render_frame(ds, n, window=window) for n in (1, 5, 10)]
    assert not np.array_equal(frames[0], frames[1])
    for n, image in zip((1, 5, 10), frames, strict=True):
        _assert_within_one(image, reference.grey(ds, n, (500, 1000, "linear")))


def _native_or_none(path: Path, frame: int) -> tuple[np.ndarray, np.ndarray] | None:
    ds = load(path)
    try:
        header = codecs.ImageHeader.from_dataset(ds)
        native = codecs._native_grey_frame(ds, header, frame)
    except imaging.RenderError:
        return None
    if native is None:
        return None
    expected, _ = get_decoder(header.transfer_syntax).as_array(ds, index=frame - 1, as_rgb=True, correct_unused_bits=True)
    return native, expected


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_the_native_reader_gives_what_pydicom_decodes(path):
    """Uncompressed little-endian grey frames are read without pydicom's decoder: bit for bit the same."""
    for frame in sorted({1, _last_frame(load(path))}):
        pair = _native_or_none(path, frame)
        if pair is None:
            continue
        native, expected = pair
        assert native.dtype == expected.dtype
        assert native.shape == expected.shape
        assert np.array_equal(native, expected)
        assert native.flags.writeable


def test_the_native_reader_covers_the_common_files():
    covered = [path.name for path in IMAGES if _native_or_none(path, 1) is not None]
    assert {"CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm"} <= set(covered)
