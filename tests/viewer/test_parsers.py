"""The parser processes (viewer.parsers): files described outside the request's process, the same
outcome as in it, a dead process replaced, and no process left behind by a killed server."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from tests.factories.dicom import ct_bytes
from viewer import dicomfile, ingest, parsers
from viewer.ingest import Outcome, ingest_many
from viewer.models import Instance, Series, Study

REPO = Path(__file__).resolve().parents[2]


def test_a_description_is_the_same_from_a_parser_process_as_in_the_request():
    whole = ct_bytes()
    meta = pydicom.dcmread(io.BytesIO(whole), stop_before_pixels=True).file_meta
    bare = whole[132 + 12 + int(meta.FileMetaInformationGroupLength):]  # no preamble, no file meta
    invalid_values = ct_bytes(PatientSex="NOT A CODE STRING", PatientAge="12345Y", StudyDate="2024-13-45")
    # (pydicom warns when it reads these here, not there)
    files = [ct_bytes(), bare, b"not dicom at all", ct_bytes()[:-300], invalid_values]
    here = dicomfile.describe_all(files)
    executor = parsers.pool()
    assert executor is not None
    assert executor.submit(dicomfile.describe_all, files).result() == here
    assert isinstance(here[0], dicomfile.Described) and here[0].rewritten is None
    assert isinstance(here[1], dicomfile.Described) and here[1].rewritten[128:132] == b"DICM"  # made whole
    assert isinstance(here[2], dicomfile.Refusal) and isinstance(here[3], dicomfile.Refusal)
    assert here[4].metadata["00080020"] == {"vr": "DA", "Value": ["2024-13-45"]}


@pytest.mark.django_db
def test_the_same_rows_whether_parsed_in_processes_or_in_the_request(team, settings):
    files = [(f"f{n}", ct_bytes(InstanceNumber=n)) for n in range(5)] + [("bad", b"\x08\x00" + b"\x00" * 50)]
    results = ingest_many(team["project"], files)
    rows = list(Instance.objects.order_by("instance_number").values())
    studies, series = list(Study.objects.values()), list(Series.objects.values())
    Instance.objects.all().delete(), Series.objects.all().delete(), Study.objects.all().delete()
    settings.CROSSREAD = {"PARSE_PROCESSES": 0}
    assert parsers.pool() is None
    again = ingest_many(team["project"], files)
    assert again == results and results[-1].outcome == Outcome.FAILED
    drop = {"id", "series_id", "study_id", "created_at", "updated_at", "indexed_at"}

    def same(a: list[dict], b: list[dict]) -> None:
        assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [
            {k: v for k, v in r.items() if k not in drop} for r in b]

    same(rows, list(Instance.objects.order_by("instance_number").values()))
    same(studies, list(Study.objects.values()))
    same(series, list(Series.objects.values()))


@pytest.mark.django_db
def test_a_parser_process_that_died_is_replaced_and_its_files_parsed_in_the_request(team):
    executor = parsers.pool()
    assert executor is not None and executor.submit(dicomfile.describe_all, []).result() == []
    for process in list(executor._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    results = ingest_many(team["project"], [(f"f{n}", ct_bytes()) for n in range(3)])
    assert [r.outcome for r in results] == [Outcome.STORED] * 3
    assert parsers.pool() is not executor  # a new pool for the next ingest
    assert [r.outcome for r in ingest_many(team["project"], [("g", ct_bytes())])] == [Outcome.STORED]


def test_a_killed_server_leaves_no_parser_process(tmp_path):
    """A server process killed (SIGKILL: it cannot stop its pool) leaves no process waiting for work."""
    script = (
        "import os, sys, time, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'crossread.settings'; django.setup()\n"
        "from viewer import dicomfile, parsers\n"
        "executor = parsers.pool(); [executor.submit(dicomfile.describe_all, []).result() for _ in range(4)]\n"
        "print(' '.join(str(pid) for pid in executor._processes), flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "CROSSREAD_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=REPO, text=True)
    try:
        children = [int(pid) for pid in server.stdout.readline().split()]
    finally:
        server.kill()
        server.wait()
    assert children
    deadline = time.monotonic() + 3 * parsers.PARENT_CHECK_SECONDS + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
