"""The real DICOM files that ship in PyPI packages, for the demo and the tests.

Sources (all installed as dependencies):

- pydicom's own test files (``pydicom/data/test_files``)
- pydicom-data (module ``data_store``): the larger files pydicom's tests download
- deid-data: CT, DX/CR, US and other files used by de-identification tools
- wsidicom-data: encoded test tiles

No Django here: this module only finds files.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def source_dirs() -> dict[str, Path]:
    """Folders holding real DICOM files, by source name."""
    dirs: dict[str, Path] = {}
    pydicom_dir = _package_dir("pydicom")
    if pydicom_dir is not None:
        dirs["pydicom"] = pydicom_dir / "data" / "test_files"
    data_store = _package_dir("data_store")
    if data_store is not None:
        dirs["pydicom-data"] = data_store / "data"
    deid = _package_dir("deid_data")
    if deid is not None:
        dirs["deid-data"] = deid / "data"
    wsi = _package_dir("wsidicom_data")
    if wsi is not None:
        dirs["wsidicom-data"] = wsi / "data"
    return {name: path for name, path in dirs.items() if path.is_dir()}


def has_dicm_prefix(path: Path) -> bool:
    """True when the file has the 128-byte preamble and ``DICM`` (a PS3.10 file)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def iter_part10_files(sources: list[str] | None = None) -> Iterator[Path]:
    """Every PS3.10 file (preamble + ``DICM``) in the corpus, in a stable order."""
    for name, folder in sorted(source_dirs().items()):
        if sources is not None and name not in sources:
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and has_dicm_prefix(path):
                yield path


def iter_bare_files(sources: list[str] | None = None) -> Iterator[Path]:
    """Every DICOM file of the corpus without the preamble and 'DICM' (a bare data set, as older
    archives wrote them, e.g. pydicom's ``rtstruct.dcm``) that pydicom reads with ``force=True`` into an
    identifiable instance, in a stable order."""
    import warnings

    import pydicom

    for name, folder in sorted(source_dirs().items()):
        if sources is not None and name not in sources:
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or has_dicm_prefix(path) or path.stat().st_size > 64 * 1024 * 1024:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
                    identified = "SOPInstanceUID" in ds and "SOPClassUID" in ds
                except Exception:
                    continue
            if identified:
                yield path


def file(source: str, relative: str) -> Path:
    """One named corpus file, e.g. ``file("pydicom", "CT_small.dcm")``; raises if absent."""
    path = source_dirs()[source] / relative
    if not path.is_file():
        raise FileNotFoundError(f"{source}:{relative} is not installed")
    return path
