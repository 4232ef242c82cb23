"""viewer.volume (pure): which series are one regular stack, and their planes against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from viewer import imaging
from viewer.imaging import PreparedFrame, Rescale, Window
from viewer.volume import (
    NoSuchPlane,
    NotAStack,
    PlaneOutOfRange,
    SliceGeometry,
    VolumeTooLarge,
    assemble,
    block_of,
    build_stack,
    check_size,
    modality_values,
    reslice,
    reslice_block,
    slice_geometry,
)

AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
SAGITTAL = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
CORONAL = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))


def axial_slices(n=3, rows=4, columns=6, spacing=2.5, row_spacing=1.0, column_spacing=1.25, top=10.0):
    """Slices listed superior first (as a scanner numbers them), at z = top - i * spacing."""
    return [SliceGeometry((-5.0, -7.0, top - i * spacing), *AXIAL, row_spacing, column_spacing, rows, columns)
            for i in range(n)]


def pattern(shape):
    """values[k, r, c] = 100 k + 10 r + c: linear along each axis, so interpolation is exact."""
    k, r, c = np.indices(shape, dtype=np.float32)
    return 100 * k + 10 * r + c


# --------------------------------------------------------------------------- the stack


def test_an_axial_series_is_sorted_along_the_normal_and_sized():
    slices = axial_slices()
    stack = build_stack([slices[1], slices[0], slices[2]])  # in any order
    assert stack.acquisition == "axial"
    assert stack.shape == (3, 4, 6)
    assert stack.slice_spacing == pytest.approx(2.5)
    # ascending along the normal (+z, superior): the most inferior slice (z = 5) first
    assert stack.order == (2, 0, 1)
    assert stack.origin == (-5.0, -7.0, 5.0)


def test_sagittal_and_coronal_sizes_follow_the_issue_formula():
    stack = build_stack(axial_slices())
    sagittal, coronal, axial = stack.layout("sagittal"), stack.layout("coronal"), stack.layout("axial")
    # sagittal/c: rows wide, round((n - 1) * slice spacing / row spacing) + 1 high
    assert (sagittal.count, sagittal.columns, sagittal.rows) == (6, 4, round(2 * 2.5 / 1.0) + 1)
    # coronal/r: columns wide, round((n - 1) * slice spacing / column spacing) + 1 high
    assert (coronal.count, coronal.columns, coronal.rows) == (4, 6, round(2 * 2.5 / 1.25) + 1)
    assert (axial.count, axial.rows, axial.columns) == (3, 4, 6)
    # square pixels on the reformatted planes
    assert sagittal.pixel_spacing == (1.0, 1.0) and coronal.pixel_spacing == (1.25, 1.25)
    assert axial.pixel_spacing == (1.0, 1.25)


def test_reformatted_pixels_of_a_known_pattern():
    stack = build_stack(axial_slices())
    values = pattern(stack.shape)
    # axial/k is slice k
    assert np.array_equal(reslice(values, stack.layout("axial"), 1), values[1])
    # sagittal/c: column c of every slice, anterior (row 0) at the left, superior (k = 2) at the top,
    # rows every 1.0 mm, i.e. every 0.4 slice: k = 2, 1.6, 1.2, 0.8, 0.4, 0
    sagittal = reslice(values, stack.layout("sagittal"), 5)
    k = 2 - 0.4 * np.arange(6)
    expected = 100 * k[:, None] + 10 * np.arange(4)[None, :] + 5
    assert sagittal.shape == (6, 4)
    assert np.allclose(sagittal, expected, atol=1e-4)
    # coronal/r: row r of every slice, the patient's right (column 0) at the left; every 1.25 mm = 0.5 slice
    coronal = reslice(values, stack.layout("coronal"), 3)
    k = 2 - 0.5 * np.arange(5)
    assert np.allclose(coronal, 100 * k[:, None] + 30 + np.arange(6)[None, :], atol=1e-4)


def test_interpolation_is_linear_between_slices():
    stack = build_stack(axial_slices())
    values = np.zeros(stack.shape, dtype=np.float32)
    values[0], values[1], values[2] = 0, 100, 400  # not linear in k
    column = reslice(values, stack.layout("sagittal"), 0)[:, 0]
    # k = 2, 1.6, 1.2, 0.8, 0.4, 0
    assert np.allclose(column, [400, 280, 160, 80, 40, 0], atol=1e-4)


def test_the_last_resampled_row_stays_on_the_last_slice():
    # 4 slices 3 mm apart, 0.7 mm rows: 9 mm / 0.7 = 12.86 -> 14 rows, the last at 9.1 mm (clamped)
    stack = build_stack(axial_slices(n=4, spacing=3.0, row_spacing=0.7))
    layout = stack.layout("sagittal")
    assert layout.rows == round(3 * 3.0 / 0.7) + 1 == 14
    values = pattern(stack.shape)
    plane = reslice(values, layout, 0)
    assert plane[-1, 0] == pytest.approx(0.0) and plane[0, 0] == pytest.approx(300.0)


def test_plane_geometry_places_every_pixel_in_patient_space():
    stack = build_stack(axial_slices())
    sagittal = stack.layout("sagittal")
    # top left pixel: the most superior slice (z = 10), row 0 (y = -7), and for sagittal/c x = -5 + 1.25 c
    assert sagittal.first_position == pytest.approx((-5.0, -7.0, 10.0))
    assert sagittal.row_cosines == (0.0, 1.0, 0.0) and sagittal.column_cosines == (0.0, 0.0, -1.0)
    assert sagittal.normal == (1.0, 0.0, 0.0) and sagittal.spacing == 1.25
    assert sagittal.position(4) == pytest.approx((0.0, -7.0, 10.0))
    coronal = stack.layout("coronal")
    assert coronal.first_position == pytest.approx((-5.0, -7.0, 10.0))
    assert coronal.position(3) == pytest.approx((-5.0, -4.0, 10.0))
    assert coronal.row_cosines == (1.0, 0.0, 0.0) and coronal.column_cosines == (0.0, 0.0, -1.0)
    axial = stack.layout("axial")
    assert axial.position(0) == pytest.approx((-5.0, -7.0, 5.0)) and axial.position(2) == pytest.approx((-5.0, -7.0, 10.0))
    assert axial.normal == (0.0, 0.0, 1.0)
    described = sagittal.describe()
    assert described["rows"] == 6 and described["pixel_spacing"] == [1.0, 1.0]


def test_a_sagittal_acquisition_maps_its_axes_from_its_orientation():
    # Sagittal slices: columns run posterior (+y), rows run inferior (-z); the normal y x -z is -x (right).
    # Four slices 2 mm apart at x = 3, 1, -1, -3; 5 rows, 3 columns, 1.5 mm pixels.
    slices = [SliceGeometry((3.0 - 2 * i, -10.0, 20.0), *SAGITTAL, 1.5, 1.5, 5, 3) for i in range(4)]
    stack = build_stack(slices)
    assert stack.acquisition == "sagittal"
    assert stack.order == (0, 1, 2, 3)  # ascending along -x: the leftmost (x = 3) first
    values = pattern(stack.shape)  # 100 k + 10 r + c
    sagittal = stack.layout("sagittal")
    assert (sagittal.count, sagittal.rows, sagittal.columns) == (4, 5, 3)
    assert np.array_equal(reslice(values, sagittal, 2), values[2])  # already anterior left, superior top
    # axial/r: row r (one height) of every slice; x to the right (patient's right at the left): the
    # slice axis runs towards -x, so it is reversed, resampled at the column spacing (1.5 mm): 6 mm /
    # 1.5 = 4 -> 5 pixels at k = 3, 2.25, 1.5, 0.75, 0; rows of the image are the columns (y)
    axial = stack.layout("axial")
    assert (axial.count, axial.rows, axial.columns) == (5, 3, 5)
    k = 3 - 0.75 * np.arange(5)
    expected = 100 * k[None, :] + 10 * 2 + np.arange(3)[:, None]
    assert np.allclose(reslice(values, axial, 2), expected, atol=1e-4)
    assert axial.row_cosines == pytest.approx((1.0, 0.0, 0.0)) and axial.column_cosines == (0.0, 1.0, 0.0)
    assert axial.first_position == pytest.approx((-3.0, -10.0, 20.0))
    assert axial.normal == (0.0, 0.0, -1.0)  # axial/r steps down the rows: inferior
    # coronal/c: column c of every slice; superior at the top (rows as stored), right at the left
    coronal = stack.layout("coronal")
    assert (coronal.count, coronal.rows, coronal.columns) == (3, 5, 5)
    expected = 100 * k[None, :] + 10 * np.arange(5)[:, None] + 1
    assert np.allclose(reslice(values, coronal, 1), expected, atol=1e-4)


def test_a_coronal_acquisition_is_recognised():
    slices = [SliceGeometry((0.0, 2.0 * i, 0.0), *CORONAL, 1.0, 1.0, 4, 4) for i in range(3)]
    stack = build_stack(slices)
    assert stack.acquisition == "coronal"
    assert (stack.layout("axial").rows, stack.layout("sagittal").columns) == (5, 5)


# --------------------------------------------------------------------------- refusals


def refused(slices) -> str:
    with pytest.raises(NotAStack) as caught:
        build_stack(slices)
    assert caught.value.status == 422
    return caught.value.detail


def test_refusals_say_why():
    slices = axial_slices(n=5)
    tilted = SliceGeometry(slices[2].position, (1.0, 0.0, 0.0), (0.0, 0.98, 0.199), 1.0, 1.25, 4, 6)
    assert "orientation" in refused([*slices[:2], tilted, *slices[3:]])
    assert "not evenly spaced" in refused([*slices[:2], *slices[3:]])  # a missing slice
    moved = SliceGeometry((-5.0, -7.0, 10.0 - 2 * 2.5 - 0.3), *AXIAL, 1.0, 1.25, 4, 6)
    assert "not evenly spaced" in refused([*slices[:2], moved, *slices[3:]])  # irregular spacing
    small = SliceGeometry(slices[2].position, *AXIAL, 1.0, 1.25, 4, 5)
    assert "size" in refused([*slices[:2], small, *slices[3:]])
    finer = SliceGeometry(slices[2].position, *AXIAL, 0.9, 1.25, 4, 6)
    assert "pixel spacing" in refused([*slices[:2], finer, *slices[3:]])
    assert "same position" in refused([*slices, slices[0]])
    assert "at least two" in refused(slices[:1])
    shifted = SliceGeometry((-5.0, -6.0, slices[2].position[2]), *AXIAL, 1.0, 1.25, 4, 6)
    assert "shifted" in refused([*slices[:2], shifted, *slices[3:]])
    c = 2 ** -0.5
    oblique = [SliceGeometry((0.0, 0.0, float(i)), (c, c, 0.0), (-c, c, 0.0), 1.0, 1.0, 4, 4) for i in range(3)]
    assert "oblique" in refused(oblique)


def test_small_rounding_is_tolerated():
    slices = [SliceGeometry((-5.0, -7.0, 10.0 - i * 2.5 + (0.0004 if i % 2 else 0.0)),
                            (1.0, 0.0, 0.0), (0.0, 1.0, 0.00001), 1.0, 1.25, 4, 6) for i in range(5)]
    assert build_stack(slices).shape == (5, 4, 6)


def test_unknown_plane_index_out_of_range_and_size_bound():
    stack = build_stack(axial_slices())
    with pytest.raises(NoSuchPlane):
        stack.layout("oblique")
    with pytest.raises(PlaneOutOfRange) as caught:
        reslice(pattern(stack.shape), stack.layout("sagittal"), 6)
    assert caught.value.status == 404
    check_size(stack, 3 * 4 * 6 * 4)
    with pytest.raises(VolumeTooLarge) as too_large:
        check_size(stack, 3 * 4 * 6 * 4 - 1)
    assert too_large.value.status == 413


# --------------------------------------------------------------------------- from DICOM JSON


def metadata(**changes):
    base = {
        "00200032": {"vr": "DS", "Value": [-5, -7, 10]},
        "00200037": {"vr": "DS", "Value": [1, 0, 0, 0, 1, 0]},
        "00280030": {"vr": "DS", "Value": [1.0, 1.25]},
        "00280010": {"vr": "US", "Value": [4]},
        "00280011": {"vr": "US", "Value": [6]},
        "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_slice_geometry_from_dicom_json():
    found = slice_geometry(metadata())
    assert found == SliceGeometry((-5.0, -7.0, 10.0), *AXIAL, 1.0, 1.25, 4, 6)
    with pytest.raises(NotAStack, match="Image Position"):
        slice_geometry(metadata(**{"00200032": None}))
    with pytest.raises(NotAStack, match="grey"):
        slice_geometry(metadata(**{"00280004": {"vr": "CS", "Value": ["RGB"]}}))
    with pytest.raises(NotAStack, match="Multi-frame"):
        slice_geometry(metadata(**{"00280008": {"vr": "IS", "Value": [30]}}))
    with pytest.raises(NotAStack, match="Pixel Spacing"):
        slice_geometry(metadata(**{"00280030": {"vr": "DS", "Value": ["x", 1]}}))


# --------------------------------------------------------------------------- values and rendering


def test_the_modality_lut_is_applied_before_reslicing_and_planes_render_like_frames():
    stack = build_stack(axial_slices())
    stored = pattern(stack.shape).astype(np.uint16) + 1000  # stored values; HU = stored - 1024
    frames = [PreparedFrame(stored[k] - 1000, offset=1000, entries=int(stored.max()) - 1000 + 1,
                            modality=Rescale(1.0, -1024.0), voi=Window(40.0, 400.0)) for k in range(3)]
    # frames are given in the stack's input order: slice i is sorted at place order.index(i)
    by_input = [frames[stack.order.index(i)] for i in range(3)]
    volume = assemble(by_input, stack)
    assert volume.integral and volume.voi == Window(40.0, 400.0)
    assert np.array_equal(volume.values, stored.astype(np.float32) - 1024)
    assert volume.nbytes == 3 * 4 * 6 * 4
    prepared = volume.prepared("coronal", 2)
    assert prepared.entries and prepared.pixels.dtype == np.uint8  # the lookup-table path
    hu = volume.plane("coronal", 2)
    window = Window(-900.0, 300.0)
    expected = imaging.render_prepared(PreparedFrame(hu), window=window)
    assert np.array_equal(imaging.render_prepared(prepared, window=window), expected)


def test_non_integer_values_render_through_the_float_path():
    stack = build_stack(axial_slices())
    frames = [PreparedFrame(np.full((4, 6), k, dtype=np.uint8), offset=0, entries=3, modality=Rescale(0.5, 0.0))
              for k in range(3)]
    volume = assemble(frames, stack)
    assert not volume.integral
    prepared = volume.prepared("sagittal", 0)
    assert prepared.entries == 0 and prepared.pixels.dtype == np.float32
    assert imaging.render_prepared(prepared).shape == (6, 4)


def test_a_modality_lookup_table_is_applied():
    table = imaging.LookupTable(first_mapped=10, data=np.array([0, 5, 50, 500]), bits=16)
    frame = PreparedFrame(np.array([[0, 1], [2, 3]], dtype=np.uint8), offset=10, entries=4, modality=table)
    assert np.array_equal(modality_values(frame), [[0, 5], [50, 500]])


def test_planes_across_the_last_axis_are_cut_in_blocks_alike():
    stack = build_stack(axial_slices(n=5, rows=8, columns=40))
    values = np.random.default_rng(1).normal(size=stack.shape).astype(np.float32)
    sagittal, coronal = stack.layout("sagittal"), stack.layout("coronal")
    assert block_of(sagittal, 0) == (0, 16) and block_of(sagittal, 17) == (16, 32) and block_of(sagittal, 39) == (32, 40)
    assert block_of(coronal, 5) == (5, 6)
    block = reslice_block(values, sagittal, 16, 32)
    assert all(np.array_equal(block[i], reslice(values, sagittal, 16 + i)) for i in range(16))
    with pytest.raises(PlaneOutOfRange):
        reslice_block(values, sagittal, 32, 48)
