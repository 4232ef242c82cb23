"""Drive the demo trial through its REST API, as the read page would: each reader measures the
phantom's lesions (bidirectionals through the annotations API), adds them to their read, and signs.
reader2 misses the new liver lesion, so the subject needs adjudication. Used by the page tests, with
the site they share (:func:`demo_trial_site`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pydicom
import requests
from pydicom.uid import generate_uid

from tests.live import LiveSite, demo_users_site


def later_study(source: Path, out: Path, *, date: str, tag: str) -> Path:
    """A copy of the study in ``source`` (a folder of the phantom's) as a later scan of the same patient: new
    Study, Series, SOP Instance and Frame of Reference UIDs (derived from the old ones and ``tag``), the
    dates ``date`` (YYYYMMDD), its own accession number and study ID. Returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            setattr(ds, keyword, generate_uid(entropy_srcs=[tag, str(getattr(ds, keyword))]))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            setattr(ds, keyword, date)
        ds.AccessionNumber = f"{tag}"[:16]
        ds.StudyID = f"{tag}"[:16]
        ds.save_as(out / path.name, enforce_file_format=True)
    return out


def demo_trial_site(root: Path, *, follow_up_2: bool = False, targets_by_length: bool = False,
                    **env: str) -> tuple[LiveSite, str, dict[str, Any]]:
    """A started site with the demo users, a small phantom (120 slices of 128x128) in the demo project
    and the demo trial on it: the site, its URL and the phantom's truth by study. ``follow_up_2``: the
    phantom's follow-up again as a third study of the patient, 8 weeks after the follow-up (a copy under new
    UIDs, :func:`later_study`), so the subject has three time points (its truth is the follow-up's, under
    ``"followup2"``); ``targets_by_length``: the trial's setting."""
    site = LiveSite.create(root, copy_of=_phantom_site(root.parent), **env)
    shutil.copytree(_phantom_site(root.parent) / "phantom", root / "phantom")
    truth = json.loads((root / "phantom" / "phantom.json").read_text())["studies"]
    if follow_up_2:
        later_study(root / "phantom" / "followup", root / "followup2", date="20240429", tag="FU2")
        site.manage("import_dicom", str(root / "followup2"), "--project", "demo", "--quiet")
        again = json.loads(json.dumps(truth["followup"]))
        for key in ("study_instance_uid", "series_instance_uid"):
            again[key] = generate_uid(entropy_srcs=["FU2", again[key]])
        for lesion in again["lesions"]:
            if lesion.get("sop_instance_uid"):  # (an absent lesion has none)
                lesion["sop_instance_uid"] = generate_uid(entropy_srcs=["FU2", lesion["sop_instance_uid"]])
        truth["followup2"] = again
    site.manage("load_demo_trial", *(["--targets-by-length"] if targets_by_length else []))
    url = site.start(1)[0]
    return site, url, truth


#: The root of the site :func:`_phantom_site` set up, once per test process.
_phantom_sites: list[Path] = []


def _phantom_site(parent: Path) -> Path:
    """The root of a site (never started) with the demo users and the small phantom imported into the demo
    project, set up once per test process in a new folder of ``parent``: each trial site starts from a copy
    of its database, data folder and phantom files, the rows and files these commands would write again
    (the same command lines; nothing they write depends on the environment a trial site adds, such as
    ``DJANGO_DEBUG=0``). What differs from one trial site to the next (its trial, a third study) is set up
    on its own copy."""
    if not _phantom_sites:
        root = Path(tempfile.mkdtemp(prefix="demo-phantom-site-", dir=parent))
        site = LiveSite.create(root, copy_of=demo_users_site(parent))  # load_demo --no-studies
        site.manage("make_phantom", str(root / "phantom"), "--slices", "120", "--size", "128", "--seed", "0")
        site.manage("import_dicom", str(root / "phantom"), "--project", "demo", "--quiet")
        _phantom_sites.append(root)
    return _phantom_sites[0]


def _call(session: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
    response = session.request(method, url, timeout=30, **kwargs)
    assert response.ok, f"{method} {url}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def sign_read(base: str, token: str, truth: dict[str, Any], *, sees_new_lesion: bool) -> int:
    """Measure, assess and sign this reader's one read of the demo trial; returns the read's id."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    reads = _call(session, "GET", f"{base}/api/trials/demo/reads/")
    read_id = (reads["reads"] if isinstance(reads, dict) else reads)[0]["id"]
    api = f"{base}/api/trials/demo/reads/{read_id}/"
    read = _call(session, "GET", api)
    timepoints = [tp["id"] for tp in read["timepoints"]]

    def measure(timepoint: str, lesion_id: str) -> int:
        lesion = next(x for x in truth[timepoint]["lesions"] if x["id"] == lesion_id)
        made = _call(session, "POST", f"{base}/api/projects/demo/annotations/", json={
            "instance": lesion["sop_instance_uid"], "kind": "bidirectional", "label": lesion_id,
            "points": [*lesion["long_axis_endpoints_px"], *lesion["short_axis_endpoints_px"]]})
        return int(made["id"])

    def lesion(role: str, organ: str, nodal: bool = False) -> int:
        before = {x["id"] for x in _call(session, "GET", api)["lesions"]}
        _call(session, "POST", f"{api}lesions/", json={"role": role, "organ": organ, "nodal": nodal})
        return next(x["id"] for x in _call(session, "GET", api)["lesions"] if x["id"] not in before)

    def assess(lesion_pk: int, order: int, status: str, annotation: int | None = None) -> None:
        body = {"lesion": lesion_pk, "timepoint": timepoints[order], "status": status}
        if annotation is not None:
            body["annotation"] = annotation
        _call(session, "PUT", f"{api}assessments/", json=body)

    for identifier, organ, nodal in (("T1", "liver", False), ("T2", "lung", False), ("T3", "mediastinum", True)):
        pk = lesion("target", organ, nodal)
        for order, timepoint in enumerate(("baseline", "followup")):
            assess(pk, order, "measured", measure(timepoint, identifier))
    pk = lesion("non_target", "left lung")
    assess(pk, 0, "present")
    assess(pk, 1, "absent")
    if sees_new_lesion:
        pk = lesion("new", "liver")
        assess(pk, 1, "present", measure("followup", "N1"))
    _call(session, "POST", f"{api}sign/")
    return int(read_id)
