"""Refusals: decompression bombs, frames out of range, corrupt data, bad windows, unsupported syntax."""

from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from demo import corpus
from viewer import imaging


def _synthetic(rows: int, columns: int, frames: int = 1, bits: int = 16, data: bytes = b"") -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientName = "Secret^Patient"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = frames
    ds.PixelData = data
    return ds


def test_every_error_has_a_status_and_code():
    expected = {
        imaging.InvalidWindow: 400,
        imaging.InvalidViewport: 400,
        imaging.InvalidParameter: 400,
        imaging.FrameNotFound: 404,
        imaging.UnsupportedMediaType: 406,
        imaging.ImageTooLarge: 413,
        imaging.UnsupportedTransferSyntax: 415,
        imaging.CorruptPixelData: 422,
        imaging.NotAnImage: 422,
    }
    for cls, status in expected.items():
        assert issubclass(cls, imaging.RenderError)
        error = cls("x")
        assert error.status == status and error.code and error.detail == "x"


def test_bomb_refused_before_allocating():
    # Declares 65535 x 65535 x 1000 frames x 2 bytes (8 TB) over 4 bytes of data.
    bomb = _synthetic(65535, 65535, frames=1000, data=b"\0" * 4)
    tracemalloc.start()
    try:
        with pytest.raises(imaging.ImageTooLarge) as caught:
            imaging.render_frame(bomb, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20
    assert caught.value.status == 413
    assert "Secret" not in str(caught.value)


def test_instance_limit_counts_all_frames():
    # each frame is small but there are many of them
    ds = _synthetic(1024, 1024, frames=5000, data=b"\0" * 16)
    with pytest.raises(imaging.ImageTooLarge, match="instance"):
        imaging.render_frame(ds, 1, limits=imaging.Limits(max_instance_bytes=2**30))


def test_limits_are_configurable():
    ds = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"))
    with pytest.raises(imaging.ImageTooLarge):
        imaging.render_frame(ds, 1, limits=imaging.Limits(max_frame_bytes=128 * 128 * 2 - 1))
    assert imaging.render_frame(ds, 1, limits=imaging.Limits(max_frame_bytes=128 * 128 * 2)).shape == (128, 128)


@pytest.mark.parametrize("frame", [0, -1, 11, 1000])
def test_frame_out_of_range(frame):
    ds = pydicom.dcmread(corpus.file("pydicom-data", "emri_small.dcm"))
    with pytest.raises(imaging.FrameNotFound) as caught:
        imaging.render_frame(ds, frame)
    assert caught.value.status == 404


def test_frame_range_of_single_frame_file():
    ds = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"))
    with pytest.raises(imaging.FrameNotFound):
        imaging.render_frame(ds, 2)


def test_truncated_pixel_data_is_corrupt():
    ds = pydicom.dcmread(corpus.file("pydicom", "MR_truncated.dcm"))
    with pytest.raises(imaging.CorruptPixelData) as caught:
        imaging.render_frame(ds, 1)
    assert caught.value.status == 422


def test_garbage_bytes_and_path():
    with pytest.raises(imaging.CorruptPixelData):
        imaging.render_frame(b"not a dicom file at all" * 10, 1)
    with pytest.raises(imaging.CorruptPixelData):
        imaging.load_dataset(b"")


def test_path_and_bytes_sources_render_like_the_dataset():
    path = corpus.file("pydicom", "MR_small.dcm")
    expected = imaging.render_frame(pydicom.dcmread(path), 1)
    assert np.array_equal(imaging.render_frame(path, 1), expected)
    assert np.array_equal(imaging.render_frame(str(path), 1), expected)
    assert np.array_equal(imaging.render_frame(path.read_bytes(), 1), expected)


def test_one_frame_is_decoded_without_the_others():
    """Corrupt the last RLE frame: the first still renders, so frames are decoded one at a time."""
    ds = pydicom.dcmread(corpus.file("pydicom-data", "emri_small_RLE.dcm"))
    frames = list(generate_frames(ds.PixelData, number_of_frames=10))
    frames[-1] = b"\xff" * 16  # not a valid RLE header
    ds.PixelData = encapsulate(frames)
    assert imaging.render_frame(ds, 1).shape == (64, 64)
    with pytest.raises(imaging.CorruptPixelData):
        imaging.render_frame(ds, 10)


def test_unsupported_transfer_syntax():
    ds = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: video, not rendered here
    with pytest.raises(imaging.UnsupportedTransferSyntax) as caught:
        imaging.render_frame(ds, 1)
    assert caught.value.status == 415
    assert not imaging.is_available("1.2.840.10008.1.2.4.100")


def test_missing_and_invalid_attributes():
    with pytest.raises(imaging.NotAnImage):
        imaging.render_frame(pydicom.dcmread(corpus.file("pydicom", "nested_priv_SQ.dcm")), 1)
    with pytest.raises(imaging.CorruptPixelData, match="NumberOfFrames"):
        imaging.render_frame(pydicom.dcmread(corpus.file("pydicom", "badVR.dcm")), 1)
    with pytest.raises(imaging.CorruptPixelData, match="transfer syntax"):
        imaging.render_frame(pydicom.dcmread(corpus.file("pydicom", "meta_missing_tsyntax.dcm")), 1)
    no_pixels = _synthetic(4, 4)
    del no_pixels.PixelData
    with pytest.raises(imaging.NotAnImage):
        imaging.render_frame(no_pixels, 1)
    odd = _synthetic(4, 4, data=b"\0" * 32)
    odd.BitsStored = 17
    with pytest.raises(imaging.CorruptPixelData, match="Bits Stored"):
        imaging.render_frame(odd, 1)


@pytest.mark.parametrize(
    "center,width,function",
    [
        (40, 0, "linear"),
        (40, 0.5, "linear"),
        (40, -10, "linear"),
        (40, 0, "linear-exact"),
        (40, -1, "sigmoid"),
        (float("nan"), 400, "linear"),
        (40, float("inf"), "linear"),
        (1e20, 400, "linear"),
        (40, 400, "cubic"),
    ],
)
def test_bad_window(center, width, function):
    with pytest.raises(imaging.InvalidWindow) as caught:
        imaging.Window(center, width, function)
    assert caught.value.status == 400


def test_window_accepts_dicom_terms_and_fractional_widths():
    assert imaging.Window(40, 0.5, "LINEAR_EXACT").function == "linear-exact"
    assert imaging.Window(40, 0.5, "SIGMOID").function == "sigmoid"
    assert imaging.Window(0, 1).function == "linear"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("40,400", imaging.Window(40, 400, "linear")),
        ("-600, 1500, linear", imaging.Window(-600, 1500)),
        ("40,80,SIGMOID", imaging.Window(40, 80, "sigmoid")),
        ("0.5,2.5,linear-exact", imaging.Window(0.5, 2.5, "linear-exact")),
    ],
)
def test_parse_window(text, expected):
    assert imaging.parse_window(text) == expected


@pytest.mark.parametrize("text", ["40", "40,400,linear,x", "a,b", "40,,linear", "40,0", ""])
def test_parse_window_rejects(text):
    with pytest.raises(imaging.InvalidWindow):
        imaging.parse_window(text)


def test_file_window_that_is_invalid_falls_back_to_full_range():
    ds = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = 40, 0  # invalid in the file: ignored, not an error
    rendered = imaging.render_frame(ds, 1)
    assert rendered.min() == 0 and rendered.max() == 255


def test_bits_stored_masking_and_sign_extension():
    """High bits beyond Bits Stored are ignored; signed 12-bit values are sign-extended."""
    values = np.array([[-2048, -1, 0, 2047]], dtype=np.int16)
    clean = _synthetic(1, 4, bits=16, data=values.tobytes())
    clean.BitsStored, clean.HighBit, clean.PixelRepresentation = 12, 11, 1
    dirty = copy.deepcopy(clean)
    garbage = (values.view(np.uint16) & 0x0FFF) | 0xA000  # junk in the 4 unused bits
    dirty.PixelData = garbage.astype(np.uint16).tobytes()
    window = imaging.Window(0, 4096, "linear-exact")
    expected = np.rint(np.clip((values.astype(float) / 4096 + 0.5) * 255, 0, 255))
    for ds in (clean, dirty):
        assert np.abs(imaging.render_frame(ds, 1, window=window).astype(float) - expected).max() <= 1


def test_messages_never_contain_patient_data():
    ds = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"))
    identifying = [str(ds.PatientName), str(ds.PatientID), str(ds.SOPInstanceUID)]
    errors = []
    for call in (
        lambda: imaging.render_frame(ds, 99),
        lambda: imaging.render_frame(ds, 1, limits=imaging.Limits(max_frame_bytes=1)),
        lambda: imaging.render_frame(ds, 1, viewport=imaging.Viewport(10, 10, 500, 0)),
    ):
        with pytest.raises(imaging.RenderError) as caught:
            call()
        errors.append(str(caught.value))
    for message in errors:
        assert not any(value and value in message for value in identifying)
