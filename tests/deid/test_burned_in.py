"""The burned-in text rule that decides which images the caller quarantines."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, SecondaryCaptureImageStorage, UltrasoundImageStorage

from tests.deid.conftest import case
from demo import corpus
from viewer.deid.burned_in import burned_in_text_reasons


def _ds(
    sop_class: str, modality: str, annotation: str | None = None, image_type: str | None = None
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    if annotation is not None:
        ds.BurnedInAnnotation = annotation
    if image_type is not None:
        ds.ImageType = image_type
    return ds


@pytest.mark.parametrize(
    ("ds", "risk"),
    [
        (_ds(CTImageStorage, "CT"), False),
        (_ds(CTImageStorage, "CT", "YES"), True),
        (_ds(UltrasoundImageStorage, "US"), True),
        (_ds(UltrasoundImageStorage, "US", "NO"), False),
        (_ds(SecondaryCaptureImageStorage, "OT", "NO"), True),
        (_ds("1.2.840.10008.5.1.4.1.1.7.4", "CT"), True),
        (_ds("1.2.840.10008.5.1.4.1.1.77.1.6", "SM", "NO", "DERIVED\\PRIMARY\\LABEL\\NONE"), True),
        (_ds("1.2.840.10008.5.1.4.1.1.77.1.6", "SM", "NO", "ORIGINAL\\PRIMARY\\VOLUME\\NONE"), False),
    ],
)
def test_rule(ds: Dataset, risk: bool) -> None:
    assert bool(burned_in_text_reasons(ds)) is risk


def test_corpus_ultrasound_is_flagged_and_ct_is_not() -> None:
    assert case(corpus.file("deid-data", "ultrasounds/RGB_IMAGE.dcm")).result.burned_in_text_risk
    assert not case(corpus.file("pydicom", "CT_small.dcm")).result.burned_in_text_risk
