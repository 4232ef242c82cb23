"""Actions apply at every depth of nested sequences."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, generate_uid

from tests.deid.conftest import SECRET, walk
from viewer.deid import Profile, deidentify, new_uid


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _nested() -> Dataset:
    ds = _item(
        SOPClassUID=CTImageStorage,
        SOPInstanceUID=generate_uid(),
        StudyInstanceUID=generate_uid(),
        PatientName="Roe^Richard",
        PatientID="ID-77",
    )
    deep = _item(
        ReferencedSOPClassUID=CTImageStorage,
        ReferencedSOPInstanceUID="1.2.826.0.1.3680043.8.498.777",
        PatientName="Roe^Richard",
        InstitutionName="Springfield General",
    )
    deep.OtherPatientIDsSequence = Sequence([_item(PatientID="OTHER-ID-1")])
    block = deep.private_block(0x0011, "ACME", create=True)
    block.add_new(0x01, "LO", "Richard private note")
    middle = _item(SeriesInstanceUID="1.2.826.0.1.3680043.8.498.555")
    middle.ReferencedInstanceSequence = Sequence([deep])
    ds.ReferencedSeriesSequence = Sequence([middle])
    ds.ContentSequence = Sequence(
        [
            _item(
                PersonName="Doe^Jane",
                DateTime="20200101120000",
                TextValue="Jane saw Richard",
                ValueType="TEXT",
            )
        ]
    )
    return ds


def test_actions_apply_at_every_depth() -> None:
    result = deidentify(_nested(), Profile(), secret=SECRET)
    out = result.dataset
    middle = out.ReferencedSeriesSequence[0]
    deep = middle.ReferencedInstanceSequence[0]
    assert middle.SeriesInstanceUID == new_uid("1.2.826.0.1.3680043.8.498.555", SECRET)
    assert deep.ReferencedSOPInstanceUID == new_uid("1.2.826.0.1.3680043.8.498.777", SECRET)
    assert deep.ReferencedSOPClassUID == CTImageStorage
    assert not deep.get("PatientName")
    assert deep.get("InstitutionName") in (None, "", "ANONYMIZED")  # X/Z/D: type 1 in some macro
    assert "OtherPatientIDsSequence" not in deep
    assert not [e for e in walk(out) if e.tag.is_private]
    content = out.ContentSequence[0]
    assert str(content.PersonName) != "Doe^Jane" and content.DateTime != "20200101120000"
    assert content.TextValue == "ANONYMIZED"  # free text inside a D (dummy) sequence
    assert content.ValueType == "TEXT"
    values = {str(e.value) for e in walk(out) if e.VR != "SQ"}
    for original in ("Roe^Richard", "Doe^Jane", "OTHER-ID-1", "Springfield General", "Richard private note"):
        assert original not in values
    assert result.uid_map["1.2.826.0.1.3680043.8.498.777"] == deep.ReferencedSOPInstanceUID
