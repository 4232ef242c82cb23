"""The viewer's pure view transform (static/viewer/viewport/view.js), run with node: image <-> screen
round trips under every rotation and flip, the canvas transform matching the marks, pan, zoom, fit and
the orientation letters (tests/viewer/js/view.test.mjs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="needs node (apt-get install nodejs)")
def test_view_transform_round_trips_under_every_rotation_and_flip() -> None:
    script = Path(__file__).parent / "js" / "view.test.mjs"
    done = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
