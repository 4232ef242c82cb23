"""RECIST 1.1 evaluator: every rule of annotations/recist.py, with its edge cases. No database."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from decimal import Decimal
from typing import Any

import pytest

from annotations.recist import (
    Evaluation,
    Lesion,
    LesionProblem,
    LesionStatus,
    Modality,
    NodeClass,
    NonTarget,
    ProblemCode,
    RecistInputError,
    Response,
    Timepoint,
    TrialSettings,
    best_overall_response,
    classify_node,
    evaluate,
    evaluation_to_json,
    measurable_minimum_mm,
    parse_request,
    validate_baseline,
)

START = datetime.date(2024, 1, 1)
R = Response


def day(n: int) -> datetime.date:
    return START + datetime.timedelta(days=n)


def les(lid: str, mm: str | None = None, *, organ: str = "liver", nodal: bool = False,
        status: LesionStatus | None = None, fragments: Sequence[str] | None = None,
        into: str | None = None) -> Lesion:
    """A target lesion; ``mm`` given means measured, otherwise ``status`` must be given."""
    if status is None:
        status = LesionStatus.MEASURED
    return Lesion(lesion_id=lid, organ=organ, nodal=nodal, status=status,
                  diameter_mm=None if mm is None else Decimal(mm),
                  fragments_mm=None if fragments is None else tuple(map(Decimal, fragments)),
                  coalesced_into=into)


def baseline(*targets: Lesion, non_target: NonTarget = NonTarget.ABSENT,
             modality: Modality = Modality.CT, thickness: str | None = "5") -> Timepoint:
    return Timepoint("baseline", START, modality, None if thickness is None else Decimal(thickness),
                     targets, non_target)


def follow(n: int, *targets: Lesion, non_target: NonTarget | None = None,
           new: bool = False) -> Timepoint:
    return Timepoint(f"day {n}", day(n), Modality.CT, Decimal(5), targets, non_target, new)


def gone(lid: str, **kwargs: Any) -> Lesion:
    return les(lid, status=LesionStatus.DISAPPEARED, **kwargs)


def ne(lid: str, **kwargs: Any) -> Lesion:
    return les(lid, status=LesionStatus.NOT_EVALUABLE, **kwargs)


def small(lid: str, **kwargs: Any) -> Lesion:
    return les(lid, status=LesionStatus.TOO_SMALL, **kwargs)


def single_lesion_course(*sizes: str | None) -> Evaluation:
    """One non-nodal target measured at baseline and then every 6 weeks; None = disappeared."""
    assert sizes[0] is not None
    timepoints = [baseline(les("T1", sizes[0]))]
    for i, size in enumerate(sizes[1:], start=1):
        lesion = les("T1", size) if size is not None else gone("T1")
        timepoints.append(follow(42 * i, lesion))
    return evaluate(timepoints)


def codes(problems: list[LesionProblem]) -> list[tuple[str, ProblemCode]]:
    return [(p.lesion_id, p.code) for p in problems]


# ----------------------------------------------------------------------------------------------
# Baseline selection (§3.1, §4.2)
# ----------------------------------------------------------------------------------------------


class TestMeasurability:
    def test_ct_with_thin_slices_needs_10_mm(self) -> None:
        problems = validate_baseline(baseline(les("T1", "9.9"), les("T2", "10.0", organ="lung")))
        assert codes(problems) == [("T1", ProblemCode.NOT_MEASURABLE)]
        assert "10.0 mm" in problems[0].detail

    def test_thick_slices_need_twice_the_thickness(self) -> None:
        timepoint = baseline(les("T1", "15.9"), les("T2", "16.0", organ="lung"), thickness="8")
        assert codes(validate_baseline(timepoint)) == [("T1", ProblemCode.NOT_MEASURABLE)]

    def test_mr_follows_the_ct_rule(self) -> None:
        timepoint = baseline(les("T1", "11.9"), modality=Modality.MR, thickness="6")
        assert codes(validate_baseline(timepoint)) == [("T1", ProblemCode.NOT_MEASURABLE)]

    @pytest.mark.parametrize(("modality", "thickness", "minimum"), [
        (Modality.CT, "5", "10"), (Modality.CT, "1.25", "10"), (Modality.CT, "5.5", "11.0"),
        (Modality.MR, "10", "20"), (Modality.CT, None, "10"), (Modality.CR, None, "20"),
        (Modality.DX, None, "20"),
    ])
    def test_minimum_table(self, modality: Modality, thickness: str | None, minimum: str) -> None:
        value = measurable_minimum_mm(modality, None if thickness is None else Decimal(thickness))
        assert value == Decimal(minimum)

    @pytest.mark.parametrize("modality", [Modality.CR, Modality.DX])
    def test_chest_radiograph_needs_20_mm(self, modality: Modality) -> None:
        timepoint = baseline(les("T1", "19.9"), les("T2", "20.0", organ="lung"),
                             modality=modality, thickness=None)
        problems = validate_baseline(timepoint)
        assert codes(problems) == [("T1", ProblemCode.NOT_MEASURABLE)]
        assert "20.0 mm" in problems[0].detail

    def test_nodal_target_needs_15_mm_short_axis(self) -> None:
        timepoint = baseline(les("N1", "14.9", nodal=True), les("N2", "15.0", nodal=True))
        problems = validate_baseline(timepoint)
        assert codes(problems) == [("N1", ProblemCode.NODE_NOT_MEASURABLE)]
        assert "pathological non-target" in problems[0].detail

    def test_normal_node_is_named_so(self) -> None:
        problems = validate_baseline(baseline(les("N1", "9.9", nodal=True)))
        assert "normal" in problems[0].detail

    def test_baseline_target_must_be_measured_with_one_diameter(self) -> None:
        timepoint = baseline(small("T1"), les("T2", fragments=["12", "13"], organ="lung"))
        assert codes(validate_baseline(timepoint)) == [
            ("T1", ProblemCode.NOT_MEASURED), ("T2", ProblemCode.NOT_MEASURED)]


@pytest.mark.parametrize(("short_axis", "expected"), [
    ("0", NodeClass.NORMAL), ("9.9", NodeClass.NORMAL), ("10.0", NodeClass.NON_TARGET),
    ("14.9", NodeClass.NON_TARGET), ("15.0", NodeClass.TARGET), ("40", NodeClass.TARGET),
])
def test_classify_node(short_axis: str, expected: NodeClass) -> None:
    assert classify_node(Decimal(short_axis)) is expected


class TestTargetSelection:
    def test_at_most_two_per_organ_case_insensitive(self) -> None:
        timepoint = baseline(les("T1", "20", organ="Liver"), les("T2", "20", organ="liver "),
                             les("T3", "20", organ="LIVER"), les("T4", "20", organ="lung"))
        assert codes(validate_baseline(timepoint)) == [("T3", ProblemCode.TOO_MANY_IN_ORGAN)]

    def test_lymph_nodes_count_as_one_organ(self) -> None:
        timepoint = baseline(les("N1", "20", nodal=True, organ="neck"),
                             les("N2", "20", nodal=True, organ="mediastinum"),
                             les("N3", "20", nodal=True, organ="axilla"))
        problems = validate_baseline(timepoint)
        assert codes(problems) == [("N3", ProblemCode.TOO_MANY_IN_ORGAN)]
        assert "lymph nodes" in problems[0].detail

    def test_at_most_five_targets(self) -> None:
        organs = ["liver", "lung", "adrenal", "spleen", "kidney", "bone", "pleura"]
        timepoint = baseline(*(les(f"T{i}", "20", organ=organ) for i, organ in enumerate(organs)))
        assert codes(validate_baseline(timepoint)) == [
            ("T5", ProblemCode.TOO_MANY_TARGETS), ("T6", ProblemCode.TOO_MANY_TARGETS)]

    def test_every_offending_lesion_and_every_rule_is_reported(self) -> None:
        timepoint = baseline(les("T1", "8"), les("T2", "12"), les("T3", "9"),
                             les("N1", "12", nodal=True), les("T4", "30", organ="lung"),
                             les("T5", "30", organ="bone"))
        assert codes(validate_baseline(timepoint)) == [
            ("T1", ProblemCode.NOT_MEASURABLE),
            ("T3", ProblemCode.NOT_MEASURABLE), ("T3", ProblemCode.TOO_MANY_IN_ORGAN),
            ("N1", ProblemCode.NODE_NOT_MEASURABLE),
            ("T5", ProblemCode.TOO_MANY_TARGETS),
        ]

    def test_valid_selection_has_no_problem(self) -> None:
        timepoint = baseline(les("T1", "10"), les("T2", "35"), les("N1", "15", nodal=True),
                             les("N2", "22", nodal=True, organ="neck"),
                             les("T3", "20", organ="lung"))
        assert validate_baseline(timepoint) == []

    def test_evaluate_returns_baseline_problems_without_raising(self) -> None:
        evaluation = evaluate([baseline(les("T1", "8")), follow(42, les("T1", "8"))])
        assert codes(list(evaluation.baseline_problems)) == [("T1", ProblemCode.NOT_MEASURABLE)]
        assert evaluation.timepoints[1].target_response is R.SD


# ----------------------------------------------------------------------------------------------
# Sum of diameters (§4.2, §4.3.1 special notes)
# ----------------------------------------------------------------------------------------------


class TestSum:
    def test_long_axes_plus_nodal_short_axes(self) -> None:
        evaluation = evaluate([baseline(les("T1", "32.1"), les("N1", "17.4", nodal=True))])
        assert evaluation.timepoints[0].sum_mm == Decimal("49.5")

    def test_too_small_counts_5_mm_and_disappeared_0(self) -> None:
        evaluation = evaluate([baseline(les("T1", "30"), les("T2", "20"),
                                        les("T3", "20", organ="lung")),
                               follow(42, small("T1"), gone("T2"), les("T3", "10", organ="lung"))])
        assert evaluation.timepoints[1].sum_mm == Decimal("15.0")

    def test_split_lesion_sums_its_fragments(self) -> None:
        evaluation = evaluate([baseline(les("T1", "40")),
                               follow(42, les("T1", fragments=["12.3", "8.4", "5.0"]))])
        assert evaluation.timepoints[1].sum_mm == Decimal("25.7")

    def test_coalesced_lesion_counts_0_and_the_absorbing_one_carries_the_diameter(self) -> None:
        evaluation = evaluate([
            baseline(les("T1", "20"), les("T2", "15")),
            follow(42, les("T1", "41"), les("T2", status=LesionStatus.COALESCED, into="T1")),
        ])
        result = evaluation.timepoints[1]
        assert result.sum_mm == Decimal("41.0")
        assert result.change_from_nadir_pct == Decimal("17.1")  # 35 -> 41 mm
        assert result.target_response is R.SD

    def test_fully_disappeared_coalesced_pair_is_cr(self) -> None:
        evaluation = evaluate([
            baseline(les("T1", "20"), les("T2", "15")),
            follow(42, gone("T1"), les("T2", status=LesionStatus.COALESCED, into="T1")),
        ])
        assert evaluation.timepoints[1].target_response is R.CR


# ----------------------------------------------------------------------------------------------
# Target response (§4.3.1) with exact arithmetic
# ----------------------------------------------------------------------------------------------


class TestTargetResponse:
    def test_decrease_of_exactly_30_percent_is_pr(self) -> None:
        result = single_lesion_course("50.0", "35.0").timepoints[1]
        assert result.change_from_baseline_pct == Decimal("-30.0")
        assert result.target_response is R.PR

    def test_decrease_of_29_97_percent_is_sd_although_it_prints_minus_30(self) -> None:
        result = single_lesion_course("30.7", "21.5").timepoints[1]  # -29.967 %
        assert result.change_from_baseline_pct == Decimal("-30.0")
        assert result.target_response is R.SD

    def test_increase_of_exactly_20_percent_and_5_mm_is_pd(self) -> None:
        result = single_lesion_course("50.0", "60.0").timepoints[1]
        assert result.change_from_nadir_pct == Decimal("20.0")
        assert result.target_response is R.PD

    def test_increase_of_19_96_percent_is_not_pd_although_it_prints_20(self) -> None:
        result = single_lesion_course("44.6", "53.5").timepoints[1]  # +19.955 %, +8.9 mm
        assert result.change_from_nadir_pct == Decimal("20.0")
        assert result.target_response is R.SD

    def test_20_percent_but_less_than_5_mm_is_not_pd(self) -> None:
        result = single_lesion_course("20.0", "24.9").timepoints[1]  # +24.5 %, +4.9 mm
        assert result.target_response is R.SD

    def test_20_percent_and_exactly_5_mm_is_pd(self) -> None:
        assert single_lesion_course("20.0", "25.0").timepoints[1].target_response is R.PD

    def test_pd_is_measured_from_the_nadir_below_baseline(self) -> None:
        evaluation = single_lesion_course("100", "55", "66")
        result = evaluation.timepoints[2]
        assert result.nadir_mm == Decimal("55.0")
        assert result.change_from_baseline_pct == Decimal("-34.0")
        assert result.change_from_nadir_pct == Decimal("20.0")
        assert result.target_response is R.PD  # PD is tested before PR

    def test_nadir_includes_baseline_and_only_earlier_sums(self) -> None:
        evaluation = single_lesion_course("50", "60", "40", "45")
        assert [r.nadir_mm for r in evaluation.timepoints] == [
            Decimal("50.0"), Decimal("50.0"), Decimal("50.0"), Decimal("40.0")]
        assert [r.target_response for r in evaluation.timepoints] == [None, R.PD, R.SD, R.SD]

    def test_sd_between_pr_and_pd(self) -> None:
        assert single_lesion_course("50", "36").timepoints[1].target_response is R.SD

    def test_percentages_round_half_away_from_zero(self) -> None:
        evaluation = single_lesion_course("40.0", "35.1", "44.9")
        assert evaluation.timepoints[1].change_from_baseline_pct == Decimal("-12.3")  # -12.25
        assert evaluation.timepoints[2].change_from_baseline_pct == Decimal("12.3")  # +12.25

    def test_non_nodal_cr_when_every_lesion_disappeared(self) -> None:
        result = single_lesion_course("50", None).timepoints[1]
        assert (result.target_response, result.sum_mm) == (R.CR, Decimal("0.0"))

    def test_too_small_non_nodal_lesion_is_not_cr(self) -> None:
        evaluation = evaluate([baseline(les("T1", "50")), follow(42, small("T1"))])
        assert evaluation.timepoints[1].target_response is R.PR

    def test_nodal_cr_with_a_non_zero_sum(self) -> None:
        evaluation = evaluate([
            baseline(les("T1", "30"), les("N1", "18", nodal=True), les("N2", "16", nodal=True)),
            follow(42, gone("T1"), les("N1", "9.9", nodal=True), small("N2", nodal=True)),
        ])
        result = evaluation.timepoints[1]
        assert result.sum_mm == Decimal("14.9")
        assert result.target_response is R.CR

    def test_node_of_10_mm_is_not_cr(self) -> None:
        evaluation = evaluate([baseline(les("N1", "18", nodal=True)),
                               follow(42, les("N1", "10.0", nodal=True))])
        assert evaluation.timepoints[1].target_response is R.PR

    def test_growth_of_nodes_still_below_10_mm_stays_cr(self) -> None:
        nodes = [les("N1", "20", nodal=True), les("N2", "20", nodal=True, organ="neck")]
        evaluation = evaluate([
            baseline(*nodes),
            follow(42, les("N1", "4", nodal=True), les("N2", "4", nodal=True, organ="neck")),
            follow(84, les("N1", "9.5", nodal=True), les("N2", "9.5", nodal=True, organ="neck")),
        ])
        result = evaluation.timepoints[2]
        assert result.change_from_nadir_pct == Decimal("137.5")  # +11 mm over a nadir of 8 mm
        assert result.target_response is R.CR


class TestNotEvaluable:
    def test_a_missing_measurement_makes_the_targets_ne(self) -> None:
        evaluation = evaluate([baseline(les("T1", "30"), les("T2", "30")),
                               follow(42, les("T1", "10"), ne("T2"))])
        result = evaluation.timepoints[1]
        assert (result.target_response, result.sum_mm, result.sum_complete) == (
            R.NE, Decimal("10.0"), False)
        assert result.overall_response is R.NE

    def test_ne_is_overridden_when_the_assessed_lesions_already_make_pd(self) -> None:
        evaluation = evaluate([baseline(les("T1", "30"), les("T2", "20")),
                               follow(42, les("T1", "61"), ne("T2"))])
        assert evaluation.timepoints[1].target_response is R.PD

    def test_an_incomplete_sum_never_becomes_the_nadir(self) -> None:
        evaluation = evaluate([baseline(les("T1", "30"), les("T2", "30")),
                               follow(42, les("T1", "10"), ne("T2")),
                               follow(84, les("T1", "15"), les("T2", "30"))])
        result = evaluation.timepoints[2]
        assert result.nadir_mm == Decimal("60.0")
        assert result.target_response is R.SD

    def test_a_cr_needs_every_target_assessed(self) -> None:
        evaluation = evaluate([baseline(les("T1", "30"), les("T2", "30")),
                               follow(42, gone("T1"), ne("T2"))])
        assert evaluation.timepoints[1].target_response is R.NE


class TestReappearance:
    def test_reappearance_outside_cr_enters_the_sum(self) -> None:
        lesions = [les("T1", "30"), les("T2", "20")]
        four_mm = evaluate([baseline(*lesions), follow(42, gone("T1"), les("T2", "10")),
                            follow(84, les("T1", "4"), les("T2", "10"))])
        assert four_mm.timepoints[2].target_response is R.PR  # +4 mm: not PD
        five_mm = evaluate([baseline(*lesions), follow(42, gone("T1"), les("T2", "10")),
                            follow(84, les("T1", "5"), les("T2", "10"))])
        assert five_mm.timepoints[2].target_response is R.PD  # +5 mm, +50 %

    def test_reappearance_from_a_0_mm_nadir_follows_the_5_mm_floor(self) -> None:
        # Targets CR but non-targets persist: overall PR, so no automatic PD on reappearance.
        def course(size: str) -> Evaluation:
            return evaluate([
                baseline(les("T1", "30"), non_target=NonTarget.PRESENT),
                follow(42, gone("T1"), non_target=NonTarget.NON_CR_NON_PD),
                follow(84, les("T1", size), non_target=NonTarget.NON_CR_NON_PD),
            ])
        small_one = course("4.9").timepoints[2]
        assert small_one.nadir_mm == Decimal("0.0")
        assert small_one.change_from_nadir_pct is None
        assert small_one.target_response is R.PR
        assert course("5.0").timepoints[2].target_response is R.PD

    def test_any_reappearance_after_an_overall_cr_is_pd(self) -> None:
        evaluation = single_lesion_course("30", None, "3")
        assert evaluation.timepoints[1].overall_response is R.CR
        result = evaluation.timepoints[2]
        assert result.change_from_nadir_pct is None
        assert result.target_response is R.PD

    def test_too_small_reappearance_after_cr_is_pd(self) -> None:
        evaluation = evaluate([baseline(les("T1", "30")), follow(42, gone("T1")),
                               follow(84, small("T1"))])
        assert evaluation.timepoints[2].target_response is R.PD

    def test_node_back_to_10_mm_after_cr_is_pd(self) -> None:
        evaluation = evaluate([baseline(les("N1", "20", nodal=True)),
                               follow(42, les("N1", "8", nodal=True)),
                               follow(84, les("N1", "10", nodal=True))])
        assert evaluation.timepoints[2].target_response is R.PD

    def test_cr_is_remembered_across_an_ne_assessment(self) -> None:
        evaluation = evaluate([baseline(les("T1", "30"), les("T2", "30")),
                               follow(42, gone("T1"), gone("T2")),
                               follow(84, gone("T1"), ne("T2")),
                               follow(126, les("T1", "3"), gone("T2"))])
        assert [r.target_response for r in evaluation.timepoints[1:]] == [R.CR, R.NE, R.PD]


# ----------------------------------------------------------------------------------------------
# Overall response (§4.4.1, Tables 1 and 2)
# ----------------------------------------------------------------------------------------------

TARGET_STATE = {
    R.CR: gone("T1"),
    R.PR: les("T1", "30"),
    R.SD: les("T1", "45"),
    R.PD: les("T1", "70"),
    R.NE: ne("T1"),
}


@pytest.mark.parametrize(("target", "non_target", "new", "overall"), [
    (R.CR, NonTarget.CR, False, R.CR),
    (R.CR, NonTarget.NON_CR_NON_PD, False, R.PR),
    (R.CR, NonTarget.NE, False, R.PR),
    (R.PR, NonTarget.CR, False, R.PR),
    (R.PR, NonTarget.NON_CR_NON_PD, False, R.PR),
    (R.PR, NonTarget.NE, False, R.PR),
    (R.SD, NonTarget.NON_CR_NON_PD, False, R.SD),
    (R.SD, NonTarget.NE, False, R.SD),
    (R.SD, NonTarget.CR, False, R.SD),
    (R.NE, NonTarget.NON_CR_NON_PD, False, R.NE),
    (R.NE, NonTarget.CR, False, R.NE),
    (R.PD, NonTarget.CR, False, R.PD),
    (R.PD, NonTarget.NE, False, R.PD),
    (R.CR, NonTarget.PD, False, R.PD),
    (R.NE, NonTarget.PD, False, R.PD),
    (R.CR, NonTarget.CR, True, R.PD),
    (R.SD, NonTarget.NON_CR_NON_PD, True, R.PD),
])
def test_table_1_targets_with_non_targets(target: Response, non_target: NonTarget, new: bool,
                                          overall: Response) -> None:
    evaluation = evaluate([baseline(les("T1", "50"), non_target=NonTarget.PRESENT),
                           follow(42, TARGET_STATE[target], non_target=non_target, new=new)])
    result = evaluation.timepoints[1]
    assert (result.target_response, result.non_target_response) == (
        target, Response(non_target.value))
    assert result.overall_response is overall


@pytest.mark.parametrize(("target", "new", "overall"), [
    (R.CR, False, R.CR), (R.PR, False, R.PR), (R.SD, False, R.SD), (R.NE, False, R.NE),
    (R.PD, False, R.PD), (R.CR, True, R.PD),
])
def test_table_1_targets_only(target: Response, new: bool, overall: Response) -> None:
    evaluation = evaluate([baseline(les("T1", "50")), follow(42, TARGET_STATE[target], new=new)])
    result = evaluation.timepoints[1]
    assert (result.target_response, result.non_target_response) == (target, None)
    assert result.overall_response is overall


@pytest.mark.parametrize(("non_target", "new", "overall"), [
    (NonTarget.CR, False, R.CR),
    (NonTarget.NON_CR_NON_PD, False, R.NON_CR_NON_PD),
    (NonTarget.NE, False, R.NE),
    (NonTarget.PD, False, R.PD),
    (NonTarget.CR, True, R.PD),
    (NonTarget.NON_CR_NON_PD, True, R.PD),
    (NonTarget.NE, True, R.PD),
])
def test_table_2_non_target_disease_only(non_target: NonTarget, new: bool,
                                         overall: Response) -> None:
    evaluation = evaluate([baseline(non_target=NonTarget.PRESENT),
                           follow(42, non_target=non_target, new=new)])
    result = evaluation.timepoints[1]
    assert (result.sum_mm, result.change_from_baseline_pct, result.nadir_mm) == (None, None, None)
    assert result.target_response is None
    assert result.overall_response is overall


def test_baseline_row_has_sums_but_no_response() -> None:
    result = evaluate([baseline(les("T1", "42"))]).timepoints[0]
    assert (result.sum_mm, result.nadir_mm) == (Decimal("42.0"), Decimal("42.0"))
    assert result.change_from_baseline_pct == result.change_from_nadir_pct == Decimal(0)
    assert (result.target_response, result.overall_response) == (None, None)


# ----------------------------------------------------------------------------------------------
# Best overall response (§4.4.3, §4.6, Table 3)
# ----------------------------------------------------------------------------------------------


def bor(*course: tuple[int, Response], confirm: bool = True,
        target_disease: bool = True) -> Response:
    settings = TrialSettings(confirmation_required=confirm)
    return best_overall_response(START, [(day(n), r) for n, r in course], settings,
                                 target_disease=target_disease)


class TestBestOverallResponseTable3:
    """Table 3 rows with the first assessment at week 8 and the next at week 12 (4 weeks later)."""

    @pytest.mark.parametrize(("first", "second", "expected"), [
        (R.CR, R.CR, R.CR),
        (R.CR, R.PR, R.PR),
        (R.CR, R.SD, R.SD),
        (R.CR, R.PD, R.SD),
        (R.CR, R.NE, R.SD),
        (R.PR, R.CR, R.PR),
        (R.PR, R.PR, R.PR),
        (R.PR, R.SD, R.SD),
        (R.PR, R.PD, R.SD),
        (R.PR, R.NE, R.SD),
        (R.NE, R.NE, R.NE),
    ])
    def test_sd_duration_met(self, first: Response, second: Response, expected: Response) -> None:
        assert bor((56, first), (84, second)) is expected

    @pytest.mark.parametrize(("first", "second", "expected"), [
        (R.CR, R.SD, R.PD),
        (R.CR, R.PD, R.PD),
        (R.CR, R.NE, R.NE),
        (R.PR, R.PD, R.PD),
        (R.PR, R.NE, R.NE),
    ])
    def test_sd_duration_not_met(self, first: Response, second: Response,
                                 expected: Response) -> None:
        # First assessment at 3 weeks, the next at 5: both before the 6-week minimum.
        assert bor((21, first), (35, second)) is expected


class TestBestOverallResponse:
    def test_confirmation_needs_the_full_interval(self) -> None:
        assert bor((56, R.PR), (83, R.PR)) is R.SD  # 27 days
        assert bor((56, R.PR), (84, R.PR)) is R.PR  # 28 days

    def test_confirmation_may_skip_ne_and_early_repeats(self) -> None:
        assert bor((56, R.PR), (70, R.NE), (84, R.PR)) is R.PR
        assert bor((56, R.CR), (63, R.CR), (84, R.CR)) is R.CR

    def test_intervening_sd_breaks_confirmation(self) -> None:
        assert bor((56, R.PR), (70, R.SD), (84, R.PR)) is R.SD
        assert bor((56, R.PR), (70, R.SD), (84, R.PR), (112, R.PR)) is R.PR

    def test_unconfirmed_pr_then_sd_is_sd_when_duration_met(self) -> None:
        assert bor((56, R.PR), (98, R.SD)) is R.SD

    def test_sd_minimum_duration(self) -> None:
        assert bor((41, R.SD)) is R.NE
        assert bor((42, R.SD)) is R.SD
        assert bor((41, R.SD), (84, R.PD)) is R.PD

    def test_assessments_after_the_first_pd_do_not_count(self) -> None:
        assert bor((35, R.PD), (84, R.PR), (112, R.PR)) is R.PD

    def test_without_confirmation_the_best_response_counts_as_it_is(self) -> None:
        assert bor((21, R.PR), confirm=False) is R.PR
        assert bor((21, R.PR), (56, R.CR), (84, R.PD), confirm=False) is R.CR
        assert bor((21, R.SD), (84, R.PD), confirm=False) is R.PD

    def test_custom_settings(self) -> None:
        settings = TrialSettings(confirmation_interval=datetime.timedelta(weeks=8),
                                 sd_min_duration=datetime.timedelta(weeks=13))
        course = [(day(56), R.PR), (day(84), R.PR)]
        assert best_overall_response(START, course, settings) is R.NE
        assert best_overall_response(START, course) is R.PR

    def test_non_target_disease_only(self) -> None:
        assert bor((56, R.NON_CR_NON_PD), target_disease=False) is R.NON_CR_NON_PD
        assert bor((56, R.CR), (84, R.CR), target_disease=False) is R.CR
        assert bor((56, R.CR), (84, R.NE), target_disease=False) is R.NON_CR_NON_PD

    def test_no_assessment_is_ne(self) -> None:
        assert bor() is R.NE
        assert evaluate([baseline(les("T1", "20"))]).best_overall_response is R.NE

    def test_evaluate_end_to_end(self) -> None:
        assert single_lesion_course("50", "30", "30").best_overall_response is R.PR
        assert single_lesion_course("50", "30", "45").best_overall_response is R.SD
        assert single_lesion_course("50", None, None).best_overall_response is R.CR
        unconfirmed = evaluate([baseline(les("T1", "50")), follow(56, les("T1", "30"))],
                               TrialSettings(confirmation_required=False))
        assert unconfirmed.best_overall_response is R.PR


# ----------------------------------------------------------------------------------------------
# Model invariants and sequence consistency
# ----------------------------------------------------------------------------------------------


class TestLesionRecord:
    @pytest.mark.parametrize(("kwargs", "message"), [
        ({"status": LesionStatus.MEASURED}, "exactly one of diameter_mm or fragments_mm"),
        ({"status": LesionStatus.MEASURED, "diameter_mm": Decimal(5),
          "fragments_mm": (Decimal(2), Decimal(3))}, "exactly one of"),
        ({"status": LesionStatus.DISAPPEARED, "diameter_mm": Decimal(5)}, "takes no diameter_mm"),
        ({"status": LesionStatus.MEASURED, "diameter_mm": Decimal("-1")}, "must not be negative"),
        ({"status": LesionStatus.MEASURED, "diameter_mm": Decimal("12.34")}, "one decimal place"),
        ({"status": LesionStatus.MEASURED, "diameter_mm": Decimal(0)}, "report it as disappeared"),
        ({"status": LesionStatus.MEASURED, "fragments_mm": (Decimal(3),)}, "two fragments"),
        ({"status": LesionStatus.COALESCED}, "coalesced_into is required"),
        ({"status": LesionStatus.TOO_SMALL, "coalesced_into": "T2"}, "coalesced_into is required"),
    ])
    def test_inconsistent_records_are_refused(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(RecistInputError) as raised:
            Lesion("T1", "liver", False, **kwargs)
        assert any(message in reason for reason in raised.value.reasons)


class TestSequenceConsistency:
    def reasons(self, timepoints: list[Timepoint]) -> str:
        with pytest.raises(RecistInputError) as raised:
            evaluate(timepoints)
        return " | ".join(raised.value.reasons)

    def test_empty(self) -> None:
        assert "baseline" in self.reasons([])

    def test_target_set_must_match_baseline(self) -> None:
        text = self.reasons([baseline(les("T1", "20"), les("T2", "20")),
                             follow(42, les("T1", "20"), les("T9", "20"))])
        assert "target T2 of the baseline is missing" in text
        assert "T9 is not a baseline target" in text

    def test_dates_must_increase_and_labels_be_unique(self) -> None:
        first = follow(42, les("T1", "20"))
        text = self.reasons([baseline(les("T1", "20")), first, first])
        assert "is not after" in text and "used 2 times" in text

    def test_nothing_to_assess(self) -> None:
        assert "nothing to assess" in self.reasons([baseline()])

    def test_coalesced_into_must_name_a_target_of_the_same_time_point(self) -> None:
        text = self.reasons([baseline(les("T1", "20"), les("T2", "20")),
                             follow(42, les("T1", "20"),
                                    les("T2", status=LesionStatus.COALESCED, into="T7"))])
        assert "coalesced_into must name another target" in text

    def test_non_target_values_follow_the_baseline(self) -> None:
        text = self.reasons([baseline(les("T1", "20"), non_target=NonTarget.PRESENT),
                             follow(42, les("T1", "20"), non_target=NonTarget.PRESENT)])
        assert "non_target must be one of" in text
        text = self.reasons([baseline(les("T1", "20")),
                             follow(42, les("T1", "20"), non_target=NonTarget.PD)])
        assert "must be absent or null" in text

    def test_baseline_targets_must_be_measured_to_evaluate(self) -> None:
        assert "must be measured at baseline" in self.reasons([baseline(small("T1"))])


# ----------------------------------------------------------------------------------------------
# JSON request and response
# ----------------------------------------------------------------------------------------------


def request(*timepoints: dict[str, Any]) -> dict[str, Any]:
    return {"timepoints": list(timepoints)}


BASELINE_JSON: dict[str, Any] = {
    "label": "baseline", "date": "2024-01-01", "modality": "CT", "slice_thickness_mm": 5,
    "targets": [
        {"lesion": "T1", "organ": "liver", "nodal": False, "diameter_mm": 32.1,
         "status": "measured"},
        {"lesion": "N1", "organ": "mediastinum", "nodal": True, "diameter_mm": 18,
         "status": "measured"},
    ],
    "non_target": "present", "new_lesions": False,
}


def week(n: int, t1: dict[str, Any], n1: dict[str, Any], non_target: str = "non-CR/non-PD",
         new: bool = False) -> dict[str, Any]:
    return {"label": f"week {n}", "date": (START + datetime.timedelta(weeks=n)).isoformat(),
            "modality": "CT", "slice_thickness_mm": 5,
            "targets": [{"lesion": "T1", **t1}, {"lesion": "N1", **n1}],
            "non_target": non_target, "new_lesions": new}


class TestParseRequest:
    def test_valid_request_round_trip(self) -> None:
        timepoints = parse_request(request(
            BASELINE_JSON,
            week(8, {"status": "measured", "diameter_mm": 20.1},
                 {"status": "measured", "diameter_mm": 9.5}),
            week(12, {"status": "measured", "fragments_mm": [10, 5.5]},
                 {"status": "too_small"}),
        ))
        assert timepoints[0].targets[0].diameter_mm == Decimal("32.1")  # exact, not 32.1000000001
        assert timepoints[1].targets[1].nodal is True  # inherited from the baseline
        assert timepoints[1].targets[1].organ == "mediastinum"
        output = evaluation_to_json(evaluate(timepoints))
        json.dumps(output)
        assert output["timepoints"][0] == {
            "label": "baseline", "sum_mm": 50.1, "sum_complete": True,
            "change_from_baseline_pct": 0.0, "nadir_mm": 50.1, "change_from_nadir_pct": 0.0,
            "target_response": None, "non_target_response": None, "overall_response": None}
        assert output["timepoints"][1] == {
            "label": "week 8", "sum_mm": 29.6, "sum_complete": True,
            "change_from_baseline_pct": -40.9, "nadir_mm": 50.1, "change_from_nadir_pct": -40.9,
            "target_response": "PR", "non_target_response": "non-CR/non-PD",
            "overall_response": "PR"}
        assert output["timepoints"][2]["sum_mm"] == 20.5
        assert output["best_overall_response"] == "PR"
        assert output["baseline_problems"] == []

    def test_baseline_problems_are_serialised(self) -> None:
        body = json.loads(json.dumps(BASELINE_JSON))
        body["targets"][1]["diameter_mm"] = 12
        output = evaluation_to_json(evaluate(parse_request(request(body))))
        assert output["baseline_problems"] == [{
            "lesion": "N1", "code": "node_not_measurable",
            "detail": "short axis 12 mm < 15 mm: the node is a pathological non-target"}]
        assert output["best_overall_response"] == "NE"

    def test_every_problem_is_listed(self) -> None:
        bad_baseline = {
            "label": "baseline", "date": "2024-02-30", "modality": "US",
            "targets": [
                {"lesion": "T1", "organ": "liver", "nodal": False, "diameter_mm": -3,
                 "status": "measured"},
                {"lesion": "T2", "organ": "liver", "nodal": False, "diameter_mm": "12",
                 "status": "measured"},
                {"lesion": "T3", "organ": "lung", "nodal": False, "diameter_mm": 12,
                 "status": "gone"},
                {"lesion": "T4", "organ": "lung", "nodal": False, "diameter_mm": 12,
                 "fragments_mm": [5, 6], "status": "measured"},
                {"lesion": "T5", "organ": "bone", "nodal": "no", "diameter_mm": 12.25,
                 "status": "measured", "colour": "red"},
            ],
            "non_target": "maybe",
        }
        with pytest.raises(RecistInputError) as raised:
            parse_request(request(bad_baseline, {"label": "", "date": "20240301"}))
        reasons = raised.value.reasons
        expected = [
            "timepoints[0].date: must be a date as YYYY-MM-DD",
            "timepoints[0].modality: must be one of 'CT', 'MR', 'CR', 'DX'",
            "timepoints[0].non_target: must be one of",
            "timepoints[0].targets[0].diameter_mm: must not be negative",
            "timepoints[0].targets[1].diameter_mm: must be a number",
            "timepoints[0].targets[2].status: must be one of 'measured'",
            "timepoints[0].targets[3]: target T4: status measured needs exactly one of",
            "timepoints[0].targets[4]: unknown keys: colour",
            "timepoints[0].targets[4].nodal: must be true or false",
            "timepoints[0].targets[4].diameter_mm: must have at most one decimal place",
            "timepoints[1].label: must be a non-empty string",
            "timepoints[1].date: must be a date as YYYY-MM-DD",
            "timepoints[1].new_lesions: must be true or false",
        ]
        for fragment in expected:
            assert any(reason.startswith(fragment) for reason in reasons), fragment
        assert len(reasons) == len(expected)
        assert str(raised.value).count(";") == len(expected) - 1

    @pytest.mark.parametrize("body", [None, [], "timepoints", {"timepoints": []},
                                      {"timepoints": "x"}, {}])
    def test_missing_baseline(self, body: Any) -> None:
        with pytest.raises(RecistInputError) as raised:
            parse_request(body)
        assert len(raised.value.reasons) == 1

    def test_unknown_top_level_key_is_reported_with_the_rest(self) -> None:
        with pytest.raises(RecistInputError) as raised:
            parse_request({"timepoint": []})
        assert raised.value.reasons == (
            "unknown keys: timepoint",
            "timepoints must be a non-empty list, the first being the baseline")

    @pytest.mark.parametrize(("value", "message"), [
        (True, "must be a number"), (float("nan"), "must be a finite number"),
        (float("inf"), "must be a finite number"), (12.34, "at most one decimal place"),
        (1e6, "at most 1000 mm"), (None, "needs exactly one of"),
    ])
    def test_bad_sizes(self, value: Any, message: str) -> None:
        body = json.loads(json.dumps(BASELINE_JSON))
        body["targets"][0]["diameter_mm"] = value
        with pytest.raises(RecistInputError) as raised:
            parse_request(request(body))
        assert len(raised.value.reasons) == 1 and message in raised.value.reasons[0]

    def test_slice_thickness_may_be_submillimetre_but_is_required_for_ct(self) -> None:
        body = dict(BASELINE_JSON, slice_thickness_mm=0.625)
        assert parse_request(request(body))[0].slice_thickness_mm == Decimal("0.625")
        with pytest.raises(RecistInputError) as raised:
            parse_request(request(dict(BASELINE_JSON, slice_thickness_mm=None)))
        assert "slice_thickness_mm is required for CT" in raised.value.reasons[0]
        with pytest.raises(RecistInputError) as raised:
            parse_request(request(dict(BASELINE_JSON, slice_thickness_mm=0)))
        assert "must be > 0" in raised.value.reasons[0]

    def test_radiograph_takes_no_slice_thickness(self) -> None:
        body = dict(BASELINE_JSON, modality="DX", slice_thickness_mm=None)
        assert parse_request(request(body))[0].modality is Modality.DX
        with pytest.raises(RecistInputError) as raised:
            parse_request(request(dict(body, slice_thickness_mm=5)))
        assert "applies to CT/MR only" in raised.value.reasons[0]

    def test_sequence_problems_are_reported_after_shape_checks(self) -> None:
        with pytest.raises(RecistInputError) as raised:
            parse_request(request(
                BASELINE_JSON,
                {"label": "week 8", "date": "2023-12-01", "non_target": "present",
                 "new_lesions": False,
                 "targets": [{"lesion": "T1", "status": "not_evaluable"},
                             {"lesion": "N1", "status": "measured", "diameter_mm": 9,
                              "nodal": False}]},
            ))
        text = " | ".join(raised.value.reasons)
        assert "is not after 'baseline'" in text
        assert "target N1: nodal differs from baseline" in text
        assert "non_target must be one of" in text

    def test_follow_up_target_unknown_at_baseline(self) -> None:
        with pytest.raises(RecistInputError) as raised:
            parse_request(request(BASELINE_JSON, week(
                8, {"status": "disappeared"}, {"status": "disappeared"}) | {"targets": [
                    {"lesion": "T1", "status": "disappeared"},
                    {"lesion": "N1", "status": "disappeared"},
                    {"lesion": "T9", "status": "disappeared"}]}))
        assert raised.value.reasons == (
            "timepoints[1].targets[2].organ: must be a non-empty string (not inherited: no "
            "such baseline target)",
            "timepoints[1].targets[2].nodal: must be true or false (not inherited: no such "
            "baseline target)")

    def test_coalesced_and_new_lesions_over_json(self) -> None:
        body = json.loads(json.dumps(BASELINE_JSON))
        body["targets"].append({"lesion": "T2", "organ": "liver", "nodal": False,
                                "diameter_mm": 20, "status": "measured"})
        follow_up = week(8, {"status": "measured", "diameter_mm": 45}, {"status": "too_small"},
                         new=True)
        follow_up["targets"].append({"lesion": "T2", "status": "coalesced", "coalesced_into": "T1"})
        output = evaluation_to_json(evaluate(parse_request(request(body, follow_up))))
        assert output["timepoints"][1]["sum_mm"] == 50.0
        assert output["timepoints"][1]["target_response"] == "SD"
        assert output["timepoints"][1]["overall_response"] == "PD"
        assert output["best_overall_response"] == "PD"


def test_the_documented_example_is_what_the_evaluator_returns() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "recist.md").read_text(encoding="utf-8")
    request_body, response_body = re.findall(r"```json\n(.*?)```", doc, re.S)
    output = evaluation_to_json(evaluate(parse_request(json.loads(request_body))))
    assert output == json.loads(response_body)


@pytest.mark.parametrize("module", ["annotations.recist", "annotations.geometry"])
def test_modules_do_not_load_django(module: str) -> None:
    code = f"import sys, {module}; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False,
                          cwd=Path(__file__).parents[2]).returncode == 0
