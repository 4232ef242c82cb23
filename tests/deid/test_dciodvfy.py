"""dciodvfy (dicom3tools) finds no error in the output that it did not find in the input.

Needs Debian's ``dicom3tools`` (``apt-get install dicom3tools``); skipped without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deid.conftest import case
from demo import corpus
from viewer.deid import Option

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (apt-get install dicom3tools)"
)

# A value in <...> (cut at the line end when it holds a CR), or a UID after "UID ".
_VALUE = re.compile(r"<[^>]*(?:>|$)|(?<=UID )[0-9.]+")

FILES = [
    ("pydicom", "CT_small.dcm"),
    ("pydicom", "MR_small.dcm"),
    ("pydicom", "SC_rgb_small_odd.dcm"),
    ("pydicom", "examples_overlay.dcm"),
    ("pydicom", "reportsi.dcm"),
    ("pydicom", "test-SR.dcm"),
    ("pydicom", "rtplan.dcm"),
    ("pydicom", "rtdose.dcm"),
    ("pydicom", "dicomdirtests/98892003/MR1/15820"),
    ("pydicom-data", "US1_UNCR.dcm"),
    ("pydicom-data", "MR-SIEMENS-DICOM-WithOverlays.dcm"),
    ("deid-data", "animals/cat.dcm"),
    ("deid-data", "ultrasounds/RGB_IMAGE.dcm"),
]


def _errors(path: Path) -> set[str]:
    """dciodvfy's error lines for ``path``, values blanked (they change by design)."""
    assert DCIODVFY is not None
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, timeout=60, check=False)
    lines = (run.stdout + run.stderr).decode("latin-1").splitlines()
    return {_VALUE.sub("<>", line.strip()) for line in lines if "Error" in line}


@pytest.mark.parametrize(
    "options", [frozenset(), frozenset(o.value for o in Option)], ids=["basic", "all-options"]
)
@pytest.mark.parametrize(("source", "name"), FILES, ids=[n for _, n in FILES])
def test_no_new_dciodvfy_errors(source: str, name: str, options: frozenset[str], tmp_path: Path) -> None:
    original = corpus.file(source, name)
    output = tmp_path / "out.dcm"
    output.write_bytes(case(original, options).written)
    new_errors = _errors(output) - _errors(original)
    assert not new_errors, "\n".join(sorted(new_errors))
