"""The synthetic CT phantom (demo.phantom): DICOM validity, geometry, HU and lesion truth.

Pure pytest, no database. A small variant (24 slices of 128x128) covers most
properties; one module fixture writes the full default size (2 x 120 x 512^2)
for the timing, the noisy HU means and the lesion measurements at 0.7 mm.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from demo import phantom

SMALL = {"slices": 24, "size": 128}
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def read_series(folder: Path) -> list[pydicom.Dataset]:
    datasets = [pydicom.dcmread(p) for p in sorted(folder.glob("CT_*.dcm"))]
    return sorted(datasets, key=lambda ds: int(ds.InstanceNumber))


def hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def disc(size: int, col: float, row: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (xx - col) ** 2 + (yy - row) ** 2 <= radius * radius


def run_length(profile: np.ndarray, centre: int, threshold: float, above: bool) -> int:
    """Contiguous pixels on the lesion side of ``threshold`` through ``centre``."""
    inside = profile > threshold if above else profile < threshold
    assert inside[centre], "the declared centre is not inside the lesion"
    n = 1
    j = centre + 1
    while j < len(profile) and inside[j]:
        n, j = n + 1, j + 1
    j = centre - 1
    while j >= 0 and inside[j]:
        n, j = n + 1, j - 1
    return n


def profiles(image: np.ndarray, les: dict, band: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(row profile, column profile) through the lesion centre, averaged over +-band lines."""
    c, r = les["centre_px"]["col"], les["centre_px"]["row"]
    row = image[r - band : r + band + 1, :].mean(axis=0)
    col = image[:, c - band : c + band + 1].mean(axis=1)
    return row, col


def threshold_diameters(image: np.ndarray, les: dict, ps: float, band: int = 0) -> tuple[float, float]:
    """(long, short) axis in mm: pixels beyond the half-way HU along the centre row / column."""
    row, col = profiles(image, les, band)
    thr = (les["expected_hu"] + les["background_hu"]) / 2
    above = les["expected_hu"] > les["background_hu"]
    c, r = les["centre_px"]["col"], les["centre_px"]["row"]
    return run_length(row, c, thr, above) * ps, run_length(col, r, thr, above) * ps


def partial_volume_length(profile: np.ndarray, centre: int, half_px: float, les: dict) -> float:
    """Chord length in pixels from the partial-volume fractions (sum of (p - bg) / contrast)."""
    lo = int(centre - half_px - 3)
    hi = int(centre + half_px + 4)
    window = profile[lo:hi]
    bg = (profile[lo : lo + 2].mean() + profile[hi - 2 : hi].mean()) / 2
    frac = np.clip((window - bg) / (les["expected_hu"] - bg), 0.0, 1.0)
    return float(frac.sum())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom-small")
    phantom.write_phantom_studies(out, **SMALL)
    return out


@pytest.fixture(scope="module")
def small_series(small) -> dict[str, list[pydicom.Dataset]]:
    return {tp: read_series(small / tp) for tp in phantom.TIMEPOINTS}


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, float, list[Path]]:
    out = tmp_path_factory.mktemp("phantom-full")
    start = time.monotonic()
    files = phantom.write_phantom_studies(out)
    return out, time.monotonic() - start, files


@pytest.fixture(scope="module")
def full_series(full) -> dict[str, list[pydicom.Dataset]]:
    return {tp: read_series(full[0] / tp) for tp in phantom.TIMEPOINTS}


# --------------------------------------------------------------------------- files and DICOM


def test_layout_and_json(small):
    for tp in phantom.TIMEPOINTS:
        names = sorted(p.name for p in (small / tp).iterdir())
        assert names == [f"CT_{i:04d}.dcm" for i in range(1, 25)] + ["phantom.json"]
        per_study = json.loads((small / tp / "phantom.json").read_text())
        assert list(per_study["studies"]) == [tp]
    desc = json.loads((small / "phantom.json").read_text())
    assert desc["synthetic"] is True
    assert set(desc["studies"]) == set(phantom.TIMEPOINTS)
    assert desc == json.loads(json.dumps(phantom.describe_phantom(**SMALL)))
    assert not [p for p in small.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_dicom_attributes(small_series):
    for tp, series in small_series.items():
        assert len(series) == 24
        for ds in series:
            assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert ds.SOPClassUID == CTImageStorage == ds.file_meta.MediaStorageSOPClassUID
            assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
            assert ds.Modality == "CT"
            assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
            assert ds.PhotometricInterpretation == "MONOCHROME2"
            assert (ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (1, 16, 12, 11)
            assert ds.PixelRepresentation == 0
            assert (float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.RescaleType) == (1.0, -1024.0, "HU")
            assert (ds.Rows, ds.Columns) == (128, 128)
            assert [float(v) for v in ds.WindowCenter] == [40.0, -600.0]
            assert [float(v) for v in ds.WindowWidth] == [400.0, 1500.0]
            assert list(ds.WindowCenterWidthExplanation) == ["SOFT TISSUE", "LUNG"]
            assert ds.Manufacturer == "Crossread synthetic phantom"
            assert ds.PatientID == "PHANTOM-001"
            assert str(ds.PatientName) == "Phantom^Synthetic"
            assert "SYNTHETIC" in ds.StudyDescription and "SYNTHETIC" in ds.ImageComments
            assert ds.SOPInstanceUID.startswith("2.25.") and ds.SOPInstanceUID.is_valid
            assert int(ds.pixel_array.max()) <= 4095


def test_geometry(small_series):
    geo = phantom.Geometry(**SMALL)
    assert geo.pixel_spacing == pytest.approx(2.8) and geo.slice_spacing == pytest.approx(12.5)
    for series in small_series.values():
        positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in series])
        assert [ds.InstanceNumber for ds in series] == list(range(1, 25))
        assert np.allclose(positions[:, :2], -179.2)
        assert np.allclose(np.diff(positions[:, 2]), -12.5)
        assert positions[0, 2] == 0.0
        for ds, pos in zip(series, positions):
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            assert np.array_equal(iop, [1, 0, 0, 0, 1, 0])
            normal = np.cross(iop[:3], iop[3:])
            # the slice location is the position along the normal
            assert float(ds.SliceLocation) == pytest.approx(float(np.dot(normal, pos)))
            assert [float(v) for v in ds.PixelSpacing] == [2.8, 2.8]
            assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 12.5
        assert len({ds.FrameOfReferenceUID for ds in series}) == 1
        assert len({ds.SeriesInstanceUID for ds in series}) == 1
        assert len({ds.StudyInstanceUID for ds in series}) == 1


def test_two_studies_of_one_patient(small_series):
    base, follow = small_series["baseline"][0], small_series["followup"][0]
    assert base.PatientID == follow.PatientID and base.PatientName == follow.PatientName
    assert base.PatientBirthDate == follow.PatientBirthDate
    assert base.StudyInstanceUID != follow.StudyInstanceUID
    assert base.SeriesInstanceUID != follow.SeriesInstanceUID
    # each scan has its own frame of reference (as two real scans would), although the
    # phantom is at identical coordinates in both
    assert base.FrameOfReferenceUID != follow.FrameOfReferenceUID
    assert base.ImagePositionPatient == follow.ImagePositionPatient
    d0 = datetime.datetime.strptime(base.StudyDate, "%Y%m%d")
    d1 = datetime.datetime.strptime(follow.StudyDate, "%Y%m%d")
    assert (d1 - d0).days == 56
    sops = [ds.SOPInstanceUID for series in small_series.values() for ds in series]
    assert len(set(sops)) == len(sops) == 48


def test_pixels_round_trip(small_series):
    for tp, series in small_series.items():
        for i in (0, 9, 23):
            expected = phantom.make_slice(i, tp, **SMALL)
            assert np.array_equal(hu(series[i]), expected)
    volume = phantom.make_volume("followup", slices=4, size=64)
    assert volume.shape == (4, 64, 64) and volume.dtype == np.int16


def test_deterministic_and_seeded(tmp_path, small):
    again = tmp_path / "again"
    phantom.write_phantom_studies(again, **SMALL)
    for path in sorted(small.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(small)).read_bytes(), path
    other = tmp_path / "seed1"
    phantom.write_phantom_studies(other, **SMALL, seed=1)
    a = pydicom.dcmread(small / "baseline" / "CT_0010.dcm")
    b = pydicom.dcmread(other / "baseline" / "CT_0010.dcm")
    assert a.ImagePositionPatient == b.ImagePositionPatient
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert not np.array_equal(a.pixel_array, b.pixel_array)
    # the same anatomy: the noise-free difference is zero, the noisy one is noise
    diff = a.pixel_array.astype(float) - b.pixel_array.astype(float)
    assert abs(diff.mean()) < 0.5 and 9 < diff.std() < 14  # sqrt(2) * 8 HU


def test_rewrite_replaces_phantom_but_not_foreign_files(tmp_path):
    phantom.write_phantom_studies(tmp_path, slices=6, size=64)
    phantom.write_phantom_studies(tmp_path, slices=4, size=64)
    assert len(list((tmp_path / "baseline").glob("CT_*.dcm"))) == 4
    (tmp_path / "followup" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        phantom.write_study(tmp_path, "followup", slices=4, size=64)
    assert (tmp_path / "followup" / "notes.txt").read_text() == "mine"
    assert len(list((tmp_path / "followup").glob("CT_*.dcm"))) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_arguments():
    with pytest.raises(ValueError):
        phantom.phantom_lesions("week8")
    with pytest.raises(ValueError):
        phantom.Geometry(slices=1, size=128)
    with pytest.raises(IndexError):
        phantom.make_slice(24, **SMALL)


# --------------------------------------------------------------------------- HU


@pytest.mark.parametrize("tp", phantom.TIMEPOINTS)
def test_uniform_regions_are_exact_without_noise(tp):
    for reg in phantom.uniform_regions(**SMALL):
        mask = disc(128, reg["centre_px"]["col"], reg["centre_px"]["row"], reg["radius_px"])
        assert mask.sum() == reg["pixels_per_slice"] > 0
        for i in range(reg["first_slice"], reg["last_slice"] + 1):
            values = np.unique(phantom.make_slice(i, tp, **SMALL, noise_sigma=0)[mask])
            assert values.tolist() == [reg["expected_hu"]], (reg["name"], i)


def test_tissues_without_noise():
    geo = phantom.Geometry()  # full resolution, so that the 3 mm cortex has whole pixels

    def at(image, x, y):
        col, row = geo.to_pixel(x, y)
        return int(image[round(row), round(col)])

    apex = phantom.make_slice(10, noise_sigma=0)  # depth 25 mm: upper thorax
    thorax = phantom.make_slice(30, noise_sigma=0)  # depth 75 mm
    abdomen = phantom.make_slice(100, noise_sigma=0)  # depth 250 mm
    assert apex[0, 0] == abdomen[0, 0] == -1000
    assert at(thorax, 0.0, -110.0) == -100  # subcutaneous fat
    assert at(apex, 0.0, -20.0) == -1000  # trachea (above the carina at 60 mm)
    for x in (-82.0, 82.0):  # lungs: parenchyma -850 +- 15 HU texture
        assert -865 <= at(thorax, x, -40.0) <= -835
    # spine: cancellous and cortical bone of a vertebral body (depth 75 mm is not a disc)
    assert at(thorax, 0.0, 60.0) == 250
    assert at(thorax, 0.0, 43.5) == 1000
    assert thorax.max() == 1000
    assert at(thorax, 24.0, 36.0) == 45  # descending aorta
    # liver only on the lower slices
    assert at(apex, -45.0, 30.0) != 60 and at(abdomen, -45.0, 30.0) == 60
    assert (abdomen == 60).sum() * geo.pixel_spacing**2 > 10000  # > 100 cm^2 of liver
    assert (thorax == 60).sum() == 0


def test_full_size_generation_is_fast_and_complete(full):
    out, seconds, files = full
    assert len(files) == 240 and all(f.is_file() for f in files)
    assert files[0] == out / "baseline" / "CT_0001.dcm" and files[-1] == out / "followup" / "CT_0120.dcm"
    assert seconds < 30, f"2 x 120 x 512^2 took {seconds:.1f} s"
    ds = pydicom.dcmread(files[0])
    assert (ds.Rows, ds.Columns) == (512, 512)
    assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.7]
    assert float(ds.SliceThickness) == 2.5


def test_full_size_geometry(full_series):
    for series in full_series.values():
        z = np.array([float(ds.ImagePositionPatient[2]) for ds in series])
        assert len(z) == 120 and np.allclose(np.diff(z), -2.5) and z[0] == 0 and z[-1] == -297.5


@pytest.mark.parametrize("tp", phantom.TIMEPOINTS)
def test_full_size_region_means_with_noise(full_series, tp):
    series = full_series[tp]
    for reg in phantom.uniform_regions():
        mask = disc(512, reg["centre_px"]["col"], reg["centre_px"]["row"], reg["radius_px"])
        slices = range(reg["first_slice"], reg["last_slice"] + 1)
        pooled = np.concatenate([hu(series[i])[mask] for i in slices])
        assert abs(pooled.mean() - reg["expected_hu"]) < 1.0, reg["name"]
        assert 7.0 < pooled.std() < 9.0, reg["name"]  # the documented sigma of 8 HU
        # the recommended browser ROI: the liver disc on one slice is within 1 HU by itself
        if reg["name"] == "liver":
            centre = hu(series[(reg["first_slice"] + reg["last_slice"]) // 2])[mask]
            assert abs(centre.mean() - 60) < 1.0


# --------------------------------------------------------------------------- lesions


def test_lesion_table_and_recist_sums():
    base = {les["id"]: les for les in phantom.phantom_lesions("baseline")}
    follow = {les["id"]: les for les in phantom.phantom_lesions("followup")}
    assert set(base) == {"T1", "T2", "T3", "NT1"}
    assert set(follow) == {"T1", "T2", "T3", "N1"}
    assert [base[k]["recist_mm"] for k in ("T1", "T2", "T3")] == [30.0, 15.0, 20.0]
    assert [follow[k]["recist_mm"] for k in ("T1", "T2", "T3")] == [21.0, 12.0, 14.0]
    assert base["T3"]["nodal"] and base["T3"]["long_axis_mm"] == 30.0
    assert phantom.recist_sums("baseline")["sum_mm"] == 65.0
    assert phantom.recist_sums("followup")["sum_mm"] == 47.0
    change = (47.0 - 65.0) / 65.0 * 100
    assert round(change, 1) == phantom.SCENARIO["change_from_baseline_percent"] == -27.7
    assert phantom.SCENARIO["target_response"] == "SD" and phantom.SCENARIO["overall_response"] == "PD"
    # the same place in both studies
    for k in ("T1", "T2", "T3"):
        assert base[k]["centre_mm"] == follow[k]["centre_mm"]
    geo = phantom.Geometry()
    for les in list(base.values()) + list(follow.values()):
        col, row = les["centre_px"]["col"], les["centre_px"]["row"]
        assert geo.to_mm(col, row) == tuple(les["centre_mm"][:2])
        assert les["centre_mm"][2] == geo.z(les["slice_index"]) and les["instance_number"] == les["slice_index"] + 1
        (c0, r0), (c1, r1) = les["long_axis_endpoints_px"]
        assert (c1 - c0) * geo.pixel_spacing == pytest.approx(les["long_axis_mm"], abs=0.01) and r0 == r1 == row


@pytest.mark.parametrize("tp", phantom.TIMEPOINTS)
def test_small_lesion_diameters_and_hu(small_series, tp):
    ps = phantom.Geometry(**SMALL).pixel_spacing
    desc = json.loads((Path(small_series[tp][0].filename).parent / "phantom.json").read_text())
    declared = {les["id"]: les for les in desc["studies"][tp]["lesions"]}
    for les in phantom.phantom_lesions(tp, **SMALL):
        assert declared[les["id"]]["sop_instance_uid"] == small_series[tp][les["slice_index"]].SOPInstanceUID
        clean = phantom.make_slice(les["slice_index"], tp, **SMALL, noise_sigma=0).astype(float)
        c, r = les["centre_px"]["col"], les["centre_px"]["row"]
        assert clean[r, c] == les["expected_hu"]
        long_mm, short_mm = threshold_diameters(clean, les, ps)
        assert abs(long_mm - les["long_axis_mm"]) <= ps + 1e-6, les["id"]
        assert abs(short_mm - les["short_axis_mm"]) <= ps + 1e-6, les["id"]
        # the partial-volume integral gives the chord to a fraction of a pixel
        row, col = profiles(clean, les)
        length = partial_volume_length(row, c, les["long_axis_mm"] / 2 / ps, les) * ps
        assert length == pytest.approx(les["long_axis_mm"], abs=0.25 * ps), les["id"]
        length = partial_volume_length(col, r, les["short_axis_mm"] / 2 / ps, les) * ps
        assert length == pytest.approx(les["short_axis_mm"], abs=0.25 * ps), les["id"]


@pytest.mark.parametrize("tp", phantom.TIMEPOINTS)
def test_full_size_lesion_diameters_with_noise(full_series, tp):
    ps = 0.7
    for les in phantom.phantom_lesions(tp):
        image = hu(full_series[tp][les["slice_index"]])
        # average 5 lines across the centre against the 8 HU noise (the liver lesion has 30 HU contrast)
        long_mm, short_mm = threshold_diameters(image, les, ps, band=2)
        # within one pixel (a boundary exactly half-way between pixels may round either way)
        assert abs(long_mm - les["long_axis_mm"]) <= ps + 1e-6, les["id"]
        assert abs(short_mm - les["short_axis_mm"]) <= ps + 1e-6, les["id"]
        c, r = les["centre_px"]["col"], les["centre_px"]["row"]
        core = image[disc(512, c, r, les["short_axis_mm"] / 2 / ps * 0.6)]
        assert abs(core.mean() - les["expected_hu"]) < 2.0, les["id"]


def test_lesions_disappear_and_appear(full_series):
    geo = phantom.Geometry()
    nt1 = next(les for les in phantom.phantom_lesions("baseline") if les["id"] == "NT1")
    n1 = next(les for les in phantom.phantom_lesions("followup") if les["id"] == "N1")
    assert "NT1" not in {les["id"] for les in phantom.phantom_lesions("followup")}
    gone = [les for les in phantom.phantom_lesions("followup", include_absent=True) if les["id"] == "NT1"][0]
    assert gone["present"] is False and gone["diameter_mm"] == 0.0

    def around(tp, les):
        c, r = les["centre_px"]["col"], les["centre_px"]["row"]
        return hu(full_series[tp][les["slice_index"]])[disc(512, c, r, 2.5 / geo.pixel_spacing)].mean()

    assert abs(around("baseline", nt1) - 40) < 3
    assert abs(around("followup", nt1) + 850) < 25  # lung again
    assert abs(around("followup", n1) - 30) < 3
    assert abs(around("baseline", n1) - 60) < 3  # liver only


# --------------------------------------------------------------------------- tooling


def test_module_does_not_import_django():
    code = "import sys, demo.phantom; sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_management_command(tmp_path):
    from django.core.management import call_command

    out = StringIO()
    call_command("make_phantom", str(tmp_path), "--slices", "3", "--size", "64", "--seed", "2", stdout=out)
    text = out.getvalue()
    assert "synthetic" in text and "6 files" in text
    assert len(list((tmp_path / "followup").glob("CT_*.dcm"))) == 3
    assert json.loads((tmp_path / "phantom.json").read_text())["parameters"]["seed"] == 2


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed")
def test_dciodvfy_finds_no_errors_or_warnings(small):
    for path in (small / "baseline" / "CT_0001.dcm", small / "followup" / "CT_0012.dcm"):
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        report = (result.stdout + result.stderr).strip().splitlines()
        assert report == ["CTImage"], report
