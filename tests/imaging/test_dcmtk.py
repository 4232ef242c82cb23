"""Cross-check monochrome uncompressed corpus files against dcmtk's ``dcm2pnm`` (apt: dcmtk)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import uid

from demo import corpus
from viewer import imaging

DCM2PNM = shutil.which("dcm2pnm")
pytestmark = pytest.mark.skipif(
    DCM2PNM is None, reason="dcm2pnm not installed (apt-get install dcmtk) - dcmtk cross-check skipped"
)

NATIVE = {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.ExplicitVRBigEndian}


def _monochrome_native_files() -> list[Path]:
    files = []
    for path in corpus.iter_part10_files():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - unreadable files are not cross-checked
            continue
        if (
            ds.file_meta.get("TransferSyntaxUID") in NATIVE
            and ds.get("PhotometricInterpretation") in ("MONOCHROME1", "MONOCHROME2")
            and ds.get("BitsAllocated") in (8, 16)
            and "ModalityLUTSequence" not in ds
        ):
            files.append(path)
    return files


FILES = _monochrome_native_files()


def _dcm2pnm(path: Path, center: float, width: float, out: Path) -> np.ndarray:
    subprocess.run(
        [DCM2PNM, "-O", "+Wfl", "+Ww", f"{center:.6f}", f"{width:.6f}", "+on", str(path), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return np.asarray(Image.open(out))


def test_there_is_something_to_cross_check():
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_window_matches_dcm2pnm(path, tmp_path):
    ds = pydicom.dcmread(path)
    try:
        prepared = imaging.prepare_frame(ds, 1)
    except imaging.CorruptPixelData:
        pytest.skip("truncated pixel data: refused by design (see test_errors)")
    low, high = prepared.value_range
    center, width = (low + high) / 2 - (high - low) / 8, max(2.0, (high - low) / 2)
    ours = imaging.render_frame(ds, 1, window=imaging.Window(center, width, "linear"))
    theirs = _dcm2pnm(path, center, width, tmp_path / "out.png")
    assert theirs.shape == ours.shape
    diff = np.abs(theirs.astype(int) - ours.astype(int))
    assert diff.max() <= 1, f"{int((diff > 1).sum())} pixels differ from dcm2pnm by more than 1"
    assert ours.min() < ours.max() or low == high
