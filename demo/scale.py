"""A large synthetic index for measuring searches at scale (bench/ingest.py ``--index-only``).

Rows only: studies of one series of ``per_study`` small CT instances, written straight into the
index in bulk (no file is stored, so these instances are searched but cannot be retrieved). Their
attributes vary as ``bench/ingest.py``'s stored instances do: 2,000 patients, a year of dates, every
third study MR. Indexing a million real instances through STOW-RS would take hours on a small
machine; the searches read only the index, so its rows are what they measure.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction

from viewer.models import Instance, Project, Series, Study

ROOT = "1.2.826.0.1.3680043.8.498.9"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def study_attributes(n: int) -> dict[str, str]:
    """Study ``n``'s matching attributes (``bench/ingest.py``'s synthetic studies follow the same rule)."""
    return {
        "patient_id": f"P{n % 2000:05d}",
        "patient_name": f"Bench^Patient{n % 2000:05d}",
        "study_date": f"2024{1 + n % 12:02d}{1 + n % 28:02d}",
        "accession_number": f"A{n:06d}",
    }


def fill_index(project: Project, instances: int, *, per_study: int = 10, chunk: int = 2000) -> int:
    """Index ``instances`` synthetic instances into ``project`` (in transactions of ``chunk`` studies);
    returns how many studies were written. Study numbers continue after those already there."""
    first = Study.objects.filter(project=project, study_instance_uid__startswith=f"{ROOT}.").count()
    count = -(-instances // per_study)
    for start in range(first, first + count, chunk):
        numbers = range(start, min(first + count, start + chunk))
        with transaction.atomic():
            studies = Study.objects.bulk_create(_studies(project, numbers))
            series = Series.objects.bulk_create(_series(project, studies, numbers))
            Instance.objects.bulk_create(_instances(project, series, numbers, per_study), batch_size=5000)
    return count


def _studies(project: Project, numbers: range) -> Iterator[Study]:
    for n in numbers:
        yield Study(project=project, study_instance_uid=f"{ROOT}.1.{n}", study_description="Synthetic",
                    **study_attributes(n))


def _series(project: Project, studies: list[Study], numbers: range) -> Iterator[Series]:
    for study, n in zip(studies, numbers, strict=True):
        yield Series(project=project, study=study, series_instance_uid=f"{ROOT}.2.{n}", series_number=1,
                     modality="CT" if n % 3 else "MR")


def _instances(project: Project, series: list[Series], numbers: range, per_study: int) -> Iterator[Instance]:
    for one, n in zip(series, numbers, strict=True):
        for k in range(per_study):
            yield Instance(project=project, series=one, sop_instance_uid=f"{ROOT}.3.{n}.{k + 1}",
                           sop_class_uid=CT_IMAGE_STORAGE, instance_number=k + 1,
                           transfer_syntax_uid="1.2.840.10008.1.2.1", rows=16, columns=16, bits_allocated=16,
                           sha256="0" * 64, size=0)
