"""RECIST 1.1 response evaluation (Eisenhauer et al., Eur J Cancer 2009;45:228-247).

Plain Python: no Django import, so the rules can be unit-tested and reused by the REST endpoint,
the reading workflow and batch exports alike. Section numbers below refer to the RECIST 1.1 paper;
"FAQ" refers to the RECIST working group's published questions and clarifications.

Rules as implemented
--------------------
Baseline (§3.1, §3.2, §4.2; :func:`validate_baseline`)
    A non-nodal target must be measurable: long axis >= 10 mm on CT or MR whose slice thickness is
    <= 5 mm, else >= twice the slice thickness (Appendix II); >= 20 mm on a chest radiograph
    (modality ``CR`` or ``DX``). A nodal target needs a short axis >= 15 mm (§3.1.1). At most five
    targets and at most two per organ (§4.2); all lymph nodes together count as one organ (FAQ).
    Every offending lesion is reported, each with every rule it breaks.
Sum of diameters (§4.2, §4.3.1 and its "special notes")
    Long axes of non-nodal targets plus short axes of nodal targets. ``too_small`` counts 5 mm,
    ``disappeared`` 0 mm, a split lesion the sum of its ``fragments_mm``. Coalesced lesions: the
    absorbing lesion is reported ``measured`` with the diameter of the conglomerate, every absorbed
    lesion is reported with status ``coalesced`` (and ``coalesced_into`` naming the absorbing one)
    and counts 0 mm.
Target response (§4.3.1), decided in this order
    1. CR: every non-nodal target disappeared (or coalesced into another) and every nodal target
       < 10 mm short axis, all targets assessed. The sum may be non-zero (normal-sized nodes).
       CR is tested first: growth of nodes that all stay < 10 mm is not progression.
    2. PD after CR: if the previous assessed time point had an overall response of CR, the
       reappearance of any target (a non-nodal target present again, or a nodal target >= 10 mm)
       is PD whatever its size (FAQ "Does a new lesion always result in PD?"; Table 3 note a).
    3. PD by size: sum >= 120 % of the nadir AND sum - nadir >= 5 mm. The nadir is the smallest
       *complete* sum at an earlier time point, baseline included. A lesion that reappears after
       disappearing (outside CR) is simply measured again: its diameter re-enters the sum and PD
       follows only through this rule (FAQ). A nadir of 0 mm makes any increase of >= 5 mm PD.
       A sum with non-evaluable targets is used here too: if the assessed targets alone already
       meet PD, the time point is PD (§4.4.2 / "missing assessments").
    4. NE if any target is ``not_evaluable``.
    5. PR: sum <= 70 % of the baseline sum (a decrease of at least 30 %).
    6. SD otherwise.
    PD is tested before PR, so a sum 34 % below baseline is PD when it is >= 20 % and >= 5 mm
    above a lower nadir.
Exact arithmetic
    Diameters are handled as integer tenths of a millimetre: inputs must have at most one decimal
    place (0.1 mm, the precision of the viewer's calipers) and are rejected otherwise, never
    rounded, because rounding could flip a decision. Decisions compare integers
    (``10 * sum <= 7 * baseline``, ``5 * (sum - nadir) >= nadir``), never floats and never the
    rounded percentage: -30.0 % exactly is PR while -29.97 % is SD although both print as -30.0.
    Reported percentages are rounded to one decimal, half away from zero (``ROUND_HALF_UP``).
    A change relative to a 0 mm sum is ``None``.
Non-target and overall response (§4.3.2, §4.3.3, §4.4.1, Tables 1 and 2)
    Baseline non-target disease is ``present`` or ``absent``; later time points report ``CR``,
    ``non-CR/non-PD``, ``PD`` or ``NE`` (or nothing, when absent at baseline). New lesions are PD.
    Table 1 applies when there are targets, Table 2 for non-target disease only, whose "stable"
    response is ``non-CR/non-PD``.
Best overall response (§4.4.3, §4.6, Table 3), see :func:`best_overall_response`
    Only assessments up to and including the first PD count. With confirmation required
    (:class:`TrialSettings`, default): a CR is confirmed by a later CR at least
    ``confirmation_interval`` (4 weeks) later with only CR or NE in between; a PR (or an unconfirmed
    CR) is confirmed as PR by a later PR or CR at least that much later with only CR, PR or NE in
    between. Otherwise the best response is SD (``non-CR/non-PD`` for non-target disease only) if
    some CR, PR, SD or non-CR/non-PD assessment is at least ``sd_min_duration`` (6 weeks) after the
    baseline scan; otherwise PD if there was a PD, or disease after a CR (Table 3 note a);
    otherwise NE. Without confirmation, the first two steps take the best response as it is.
"""

from __future__ import annotations

import datetime
import enum
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from decimal import Decimal
from typing import Any, Final, TypeVar

TENTH: Final = Decimal("0.1")
MAX_DIAMETER_MM: Final = Decimal(1000)
MAX_SLICE_THICKNESS_MM: Final = Decimal(100)
MAX_TARGETS: Final = 5
MAX_TARGETS_PER_ORGAN: Final = 2
LYMPH_NODES: Final = "lymph nodes"

# All thresholds in tenths of a millimetre.
_TOO_SMALL_DEFAULT: Final = 50  # §4.3.1 "target lesions that become too small to measure": 5 mm
_PD_ABSOLUTE_MIN: Final = 50  # §4.3.1 PD: absolute increase of at least 5 mm
_NODE_NORMAL_BELOW: Final = 100  # §4.3.1 CR / §3.1.1: nodes < 10 mm short axis are normal
_NODE_TARGET_MIN: Final = 150  # §3.1.1: measurable (target) node: short axis >= 15 mm
_MEASURABLE_MIN: Final = 100  # §3.1.1: 10 mm by CT/MR
_RADIOGRAPH_MIN: Final = 200  # §3.1.1: 20 mm by chest X-ray
_THIN_SLICE_MAX: Final = 50  # Appendix II: the 10 mm rule holds for slices up to 5 mm


class LesionStatus(enum.StrEnum):
    """How a target lesion was found at a time point (§4.3.1 and its special notes)."""

    MEASURED = "measured"
    TOO_SMALL = "too_small"
    DISAPPEARED = "disappeared"
    NOT_EVALUABLE = "not_evaluable"
    COALESCED = "coalesced"


class Modality(enum.StrEnum):
    """Imaging methods RECIST 1.1 accepts for measurement (§3.2): CT, MR and chest radiography."""

    CT = "CT"
    MR = "MR"
    CR = "CR"
    DX = "DX"


class NonTarget(enum.StrEnum):
    """Non-target disease as reported: at baseline ``present``/``absent``, later a response."""

    PRESENT = "present"
    ABSENT = "absent"
    CR = "CR"
    NON_CR_NON_PD = "non-CR/non-PD"
    PD = "PD"
    NE = "NE"


class Response(enum.StrEnum):
    """Time-point and best overall responses (§4.3, §4.4)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"
    NON_CR_NON_PD = "non-CR/non-PD"


class NodeClass(enum.StrEnum):
    """Lymph node classification by short axis (§3.1.1, §3.1.2)."""

    TARGET = "target"  # >= 15 mm: pathological and measurable
    NON_TARGET = "non_target"  # 10 to < 15 mm: pathological, non-measurable
    NORMAL = "normal"  # < 10 mm: not pathological


class ProblemCode(enum.StrEnum):
    """Why a baseline target breaks RECIST 1.1 target selection (§3.1, §4.2)."""

    NOT_MEASURED = "not_measured"
    NOT_MEASURABLE = "not_measurable"
    NODE_NOT_MEASURABLE = "node_not_measurable"
    TOO_MANY_IN_ORGAN = "too_many_in_organ"
    TOO_MANY_TARGETS = "too_many_targets"


class RecistInputError(ValueError):
    """Input that cannot be evaluated; ``reasons`` lists every problem found, not just the first.

    The REST endpoint renders it as a 400 with ``errors = reasons``.
    """

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons: tuple[str, ...] = tuple(reasons)
        super().__init__("; ".join(self.reasons))


@dataclass(frozen=True)
class Lesion:
    """A target lesion at one time point.

    Parameters
    ----------
    lesion_id
        Identifier, stable across time points (e.g. ``"T1"``).
    organ
        Organ as named by the reader; ignored for nodal lesions, which all count as one organ.
    nodal
        True for a lymph node: then ``diameter_mm`` is the short axis, otherwise the long axis.
    status
        See :class:`LesionStatus`.
    diameter_mm
        Required for ``measured`` unless ``fragments_mm`` is given; forbidden otherwise.
        Multiples of 0.1 mm.
    fragments_mm
        Diameters of the fragments of a split lesion (status ``measured``, at least two).
    coalesced_into
        For status ``coalesced``: the target that absorbed this one and carries the diameter.
    """

    lesion_id: str
    organ: str
    nodal: bool
    status: LesionStatus
    diameter_mm: Decimal | None = None
    fragments_mm: tuple[Decimal, ...] | None = None
    coalesced_into: str | None = None

    def __post_init__(self) -> None:
        problems = _lesion_problems(self)
        if problems:
            raise RecistInputError([f"target {self.lesion_id}: {p}" for p in problems])

    def contribution_tenths(self) -> int | None:
        """This lesion's part of the sum of diameters in 0.1 mm; ``None`` when not evaluable."""
        match self.status:
            case LesionStatus.MEASURED:
                if self.fragments_mm is not None:
                    return sum(_tenths(f) for f in self.fragments_mm)
                assert self.diameter_mm is not None  # guaranteed by __post_init__
                return _tenths(self.diameter_mm)
            case LesionStatus.TOO_SMALL:
                return _TOO_SMALL_DEFAULT
            case LesionStatus.DISAPPEARED | LesionStatus.COALESCED:
                return 0
            case LesionStatus.NOT_EVALUABLE:
                return None


@dataclass(frozen=True)
class Timepoint:
    """One assessment; the first of a sequence is the baseline.

    Parameters
    ----------
    label
        Unique name, e.g. ``"baseline"`` or ``"week 8"``.
    date
        Scan date; strictly increasing along the sequence.
    modality
        Required at baseline (it decides measurability), informative afterwards.
    slice_thickness_mm
        Required at baseline for CT and MR; must be ``None`` for radiographs.
    targets
        Target lesions, the same identifiers at every time point.
    non_target
        ``PRESENT``/``ABSENT`` at baseline; later a response, or ``None`` when absent at baseline.
    new_lesions
        Unequivocal new lesions (§4.3.3); always ``False`` at baseline.
    """

    label: str
    date: datetime.date
    modality: Modality | None
    slice_thickness_mm: Decimal | None
    targets: Sequence[Lesion]
    non_target: NonTarget | None
    new_lesions: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))


@dataclass(frozen=True)
class LesionProblem:
    """One way a baseline target breaks RECIST 1.1 selection rules."""

    lesion_id: str
    code: ProblemCode
    detail: str


@dataclass(frozen=True)
class TrialSettings:
    """Trial-level options for the best overall response (§4.6).

    Parameters
    ----------
    confirmation_required
        Whether CR and PR need confirmation (§4.6.1: non-randomised trials with response as the
        primary end point).
    confirmation_interval
        Minimum time between a response and the assessment confirming it (§4.6.1: 4 weeks).
    sd_min_duration
        Minimum time from the baseline scan at which an SD must be observed to count as best
        response (§4.6.3: protocol-defined, "in general not less than 6-8 weeks").
    """

    confirmation_required: bool = True
    confirmation_interval: datetime.timedelta = datetime.timedelta(weeks=4)
    sd_min_duration: datetime.timedelta = datetime.timedelta(weeks=6)


@dataclass(frozen=True)
class TimepointResult:
    """The evaluation of one time point; sizes in mm, percentages rounded to 0.1.

    ``sum_mm`` is the sum over the assessed targets; ``sum_complete`` is False when some target was
    not evaluable (that sum is then only used to detect PD and never becomes the nadir).
    ``nadir_mm`` is the reference for PD at this time point: the smallest complete sum at an
    earlier time point, baseline included (at baseline: the baseline sum). Responses are ``None``
    at baseline, and the target fields are ``None`` without target disease.
    """

    label: str
    date: datetime.date
    sum_mm: Decimal | None
    sum_complete: bool
    change_from_baseline_pct: Decimal | None
    nadir_mm: Decimal | None
    change_from_nadir_pct: Decimal | None
    target_response: Response | None
    non_target_response: Response | None
    overall_response: Response | None


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`."""

    timepoints: tuple[TimepointResult, ...]
    best_overall_response: Response
    baseline_problems: tuple[LesionProblem, ...] = field(default=())


# Follow-up non-target reports as responses (§4.3.2); sequence_problems() admits no other value.
_NON_TARGET_RESPONSES: Final[Mapping[NonTarget | None, Response]] = {
    NonTarget.CR: Response.CR,
    NonTarget.NON_CR_NON_PD: Response.NON_CR_NON_PD,
    NonTarget.PD: Response.PD,
    NonTarget.NE: Response.NE,
}


# --------------------------------------------------------------------------------------------
# Baseline rules
# --------------------------------------------------------------------------------------------


def classify_node(short_axis_mm: Decimal) -> NodeClass:
    """Classify a lymph node by its short axis (§3.1.1, §3.1.2).

    >= 15 mm: pathological and measurable (may be a target); 10 to < 15 mm: pathological,
    non-measurable (non-target); < 10 mm: normal.
    """
    tenths = _tenths(short_axis_mm)
    if tenths >= _NODE_TARGET_MIN:
        return NodeClass.TARGET
    if tenths >= _NODE_NORMAL_BELOW:
        return NodeClass.NON_TARGET
    return NodeClass.NORMAL


def measurable_minimum_mm(modality: Modality, slice_thickness_mm: Decimal | None) -> Decimal:
    """Smallest long axis of a measurable non-nodal lesion (§3.1.1, Appendix II).

    20 mm on a chest radiograph; 10 mm on CT/MR with slices of at most 5 mm, otherwise twice the
    slice thickness. An unknown CT/MR slice thickness is taken as thin (10 mm).
    """
    if modality in (Modality.CR, Modality.DX):
        return Decimal(_RADIOGRAPH_MIN).scaleb(-1)
    minimum = Decimal(_MEASURABLE_MIN).scaleb(-1)
    if slice_thickness_mm is not None and slice_thickness_mm * 10 > _THIN_SLICE_MAX:
        return max(minimum, 2 * slice_thickness_mm)
    return minimum


def validate_baseline(baseline: Timepoint) -> list[LesionProblem]:
    """Check the baseline target selection against RECIST 1.1 (§3.1, §4.2).

    Returns every problem of every offending lesion, in lesion order; an empty list means the
    selection is valid. Targets beyond the fifth, and beyond the second in one organ (lymph nodes
    being one organ), are reported in the order given. A baseline without a modality is judged as
    CT (``evaluate`` and ``parse_request`` require the modality).
    """
    problems: list[LesionProblem] = []
    per_organ: Counter[str] = Counter()
    modality = baseline.modality or Modality.CT
    minimum = measurable_minimum_mm(modality, baseline.slice_thickness_mm)
    for index, lesion in enumerate(baseline.targets):
        lid = lesion.lesion_id
        if lesion.status is not LesionStatus.MEASURED or lesion.fragments_mm is not None:
            problems.append(LesionProblem(lid, ProblemCode.NOT_MEASURED, (
                f"baseline targets need one measured diameter, got status {lesion.status}"
                + (" with fragments" if lesion.fragments_mm is not None else ""))))
        elif lesion.nodal:
            assert lesion.diameter_mm is not None
            node = classify_node(lesion.diameter_mm)
            if node is not NodeClass.TARGET:
                kind = "a pathological non-target" if node is NodeClass.NON_TARGET else "normal"
                problems.append(LesionProblem(lid, ProblemCode.NODE_NOT_MEASURABLE, (
                    f"short axis {lesion.diameter_mm} mm < 15 mm: the node is {kind}")))
        else:
            assert lesion.diameter_mm is not None
            if lesion.diameter_mm < minimum:
                problems.append(LesionProblem(lid, ProblemCode.NOT_MEASURABLE, (
                    f"long axis {lesion.diameter_mm} mm < {minimum} mm, the minimum on {modality}"
                    + (f" with {baseline.slice_thickness_mm} mm slices"
                       if modality in (Modality.CT, Modality.MR)
                       and baseline.slice_thickness_mm is not None else ""))))
        organ = _organ_key(lesion)
        per_organ[organ] += 1
        if per_organ[organ] > MAX_TARGETS_PER_ORGAN:
            problems.append(LesionProblem(lid, ProblemCode.TOO_MANY_IN_ORGAN, (
                f"more than {MAX_TARGETS_PER_ORGAN} targets in {organ}")))
        if index >= MAX_TARGETS:
            problems.append(LesionProblem(lid, ProblemCode.TOO_MANY_TARGETS, (
                f"more than {MAX_TARGETS} targets in total")))
    return problems


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate(timepoints: Sequence[Timepoint], settings: TrialSettings | None = None) -> Evaluation:
    """Evaluate a sequence of assessments (baseline first) by RECIST 1.1.

    Raises
    ------
    RecistInputError
        If the sequence is inconsistent (see :func:`sequence_problems`). Baseline selection
        problems do not raise: they are returned in ``Evaluation.baseline_problems``.
    """
    settings = settings or TrialSettings()
    problems = sequence_problems(timepoints)
    if problems:
        raise RecistInputError(problems)
    baseline, followups = timepoints[0], timepoints[1:]
    has_targets = bool(baseline.targets)
    has_non_targets = baseline.non_target is NonTarget.PRESENT

    base_sum = _sum_of_diameters(baseline.targets)[0] if has_targets else None
    results = [TimepointResult(
        label=baseline.label, date=baseline.date, sum_mm=_mm(base_sum), sum_complete=True,
        change_from_baseline_pct=_percent_change(base_sum, base_sum), nadir_mm=_mm(base_sum),
        change_from_nadir_pct=_percent_change(base_sum, base_sum), target_response=None,
        non_target_response=None, overall_response=None)]

    nadir = base_sum
    previous_overall: Response | None = None
    for tp in followups:
        non_target = _NON_TARGET_RESPONSES[tp.non_target] if has_non_targets else None
        if base_sum is None or nadir is None:
            target, total, complete = None, None, True
            overall = _overall_non_target_only(non_target, tp.new_lesions)
        else:
            total, complete = _sum_of_diameters(tp.targets)
            target = _target_response(tp.targets, total, complete, base_sum, nadir,
                                      previous_overall)
            overall = _overall_with_targets(target, non_target, tp.new_lesions)
        results.append(TimepointResult(
            label=tp.label, date=tp.date, sum_mm=_mm(total), sum_complete=complete,
            change_from_baseline_pct=_percent_change(total, base_sum), nadir_mm=_mm(nadir),
            change_from_nadir_pct=_percent_change(total, nadir), target_response=target,
            non_target_response=non_target, overall_response=overall))
        if nadir is not None and total is not None and complete:
            nadir = min(nadir, total)
        if overall is not Response.NE:
            previous_overall = overall

    best = best_overall_response(
        baseline.date,
        [(r.date, r.overall_response) for r in results[1:] if r.overall_response is not None],
        settings, target_disease=has_targets)
    return Evaluation(tuple(results), best, tuple(validate_baseline(baseline)))


def best_overall_response(
    baseline_date: datetime.date,
    assessments: Sequence[tuple[datetime.date, Response]],
    settings: TrialSettings | None = None,
    *,
    target_disease: bool = True,
) -> Response:
    """Best overall response over the post-baseline assessments (§4.4.3, §4.6, Table 3).

    Parameters
    ----------
    baseline_date
        Start of the SD duration (§4.6.3 measures it from the start of treatment; the baseline
        scan date stands in for it here).
    assessments
        ``(date, overall response)`` in chronological order, baseline excluded.
    settings
        Confirmation and SD-duration options.
    target_disease
        False for non-target disease only: the "stable" best response is then ``non-CR/non-PD``.

    Notes
    -----
    Assessments after the first PD are ignored. With confirmation (Table 3):

    1. CR if a CR is followed, at least ``confirmation_interval`` later, by another CR with only
       CR or NE in between.
    2. PR if a PR or CR is followed, at least ``confirmation_interval`` later, by a PR or CR with
       only CR, PR or NE in between (CR then PR is PR: the "CR" was really a PR, Table 3 note a).
    3. SD (or non-CR/non-PD) if any CR, PR, SD or non-CR/non-PD assessment lies at least
       ``sd_min_duration`` after baseline.
    4. PD if there was a PD, or a CR later followed by anything but CR or NE (Table 3 note a:
       disease seen after a true CR is progression).
    5. NE otherwise, including when there is no post-baseline assessment.

    Without confirmation, steps 1 and 2 take the best CR or PR as it is.
    """
    settings = settings or TrialSettings()
    considered: list[tuple[datetime.date, Response]] = []
    for assessment in assessments:
        considered.append(assessment)
        if assessment[1] is Response.PD:
            break
    responses = [response for _, response in considered]
    if settings.confirmation_required:
        if _confirmed(considered, {Response.CR}, settings.confirmation_interval):
            return Response.CR
        if _confirmed(considered, {Response.CR, Response.PR}, settings.confirmation_interval):
            return Response.PR
    else:
        for response in (Response.CR, Response.PR):
            if response in responses:
                return response
    not_progressing = {Response.CR, Response.PR, Response.SD, Response.NON_CR_NON_PD}
    if any(response in not_progressing and date - baseline_date >= settings.sd_min_duration
           for date, response in considered):
        return Response.SD if target_disease else Response.NON_CR_NON_PD
    if Response.PD in responses:
        return Response.PD
    if Response.CR in responses:
        after_cr = responses[responses.index(Response.CR):]
        if any(response not in (Response.CR, Response.NE) for response in after_cr):
            return Response.PD
    return Response.NE


def _confirmed(considered: Sequence[tuple[datetime.date, Response]], level: set[Response],
               interval: datetime.timedelta) -> bool:
    """Whether some assessment in ``level`` is confirmed by a later one in ``level``.

    The confirming assessment must be at least ``interval`` later; assessments in between must be
    in ``level`` or NE.
    """
    for i, (first_date, first) in enumerate(considered):
        if first not in level:
            continue
        for later_date, later in considered[i + 1:]:
            if later in level and later_date - first_date >= interval:
                return True
            if later not in level and later is not Response.NE:
                break
    return False


def _target_response(targets: Sequence[Lesion], total: int, complete: bool, base_sum: int,
                     nadir: int, previous_overall: Response | None) -> Response:
    """Target-lesion response at a follow-up (§4.3.1); see the module docstring for the order."""
    if complete and all(_lesion_in_cr(lesion) for lesion in targets):
        return Response.CR
    if previous_overall is Response.CR and any(
            lesion.status is not LesionStatus.NOT_EVALUABLE and not _lesion_in_cr(lesion)
            for lesion in targets):
        return Response.PD
    if total - nadir >= _PD_ABSOLUTE_MIN and 5 * (total - nadir) >= nadir:
        return Response.PD
    if not complete:
        return Response.NE
    if 10 * total <= 7 * base_sum:
        return Response.PR
    return Response.SD


def _lesion_in_cr(lesion: Lesion) -> bool:
    """Non-nodal: gone (disappeared or merged into another); nodal: short axis < 10 mm."""
    if lesion.nodal:
        contribution = lesion.contribution_tenths()
        return contribution is not None and contribution < _NODE_NORMAL_BELOW
    return lesion.status in (LesionStatus.DISAPPEARED, LesionStatus.COALESCED)


def _overall_with_targets(target: Response, non_target: Response | None,
                          new_lesions: bool) -> Response:
    """Table 1 (§4.4.1): target disease, with or without non-target disease."""
    if new_lesions or target is Response.PD or non_target is Response.PD:
        return Response.PD
    if target is Response.NE:
        return Response.NE
    if target is Response.CR:
        return Response.CR if non_target in (None, Response.CR) else Response.PR
    return target


def _overall_non_target_only(non_target: Response | None, new_lesions: bool) -> Response:
    """Table 2 (§4.4.1): non-target disease only."""
    if new_lesions or non_target is Response.PD:
        return Response.PD
    assert non_target is not None  # sequence_problems guarantees some baseline disease
    return non_target


# --------------------------------------------------------------------------------------------
# Consistency checks shared by evaluate() and parse_request()
# --------------------------------------------------------------------------------------------


def sequence_problems(timepoints: Sequence[Timepoint]) -> list[str]:
    """Every inconsistency that makes a sequence of time points impossible to evaluate.

    Checks: a baseline exists, with a modality, a slice thickness for CT/MR (none for
    radiographs), non-target disease ``present``/``absent``, no new lesions and some disease;
    labels unique; dates strictly increasing; follow-up non-target values consistent with
    baseline; the same target identifiers at every time point, with the baseline's organ and
    nodal flag; ``coalesced_into`` naming another, non-coalesced target of the same time point.
    """
    if not timepoints:
        return ["a baseline time point is required"]
    problems: list[str] = []
    baseline = timepoints[0]
    where = f"baseline '{baseline.label}'"
    if baseline.modality is None:
        problems.append(f"{where}: modality is required at baseline")
    elif baseline.modality in (Modality.CT, Modality.MR) and baseline.slice_thickness_mm is None:
        problems.append(f"{where}: slice_thickness_mm is required for {baseline.modality}")
    if baseline.non_target not in (NonTarget.PRESENT, NonTarget.ABSENT):
        problems.append(f"{where}: non_target must be 'present' or 'absent' at baseline")
    if baseline.new_lesions:
        problems.append(f"{where}: new_lesions cannot be true at baseline")
    if not baseline.targets and baseline.non_target is NonTarget.ABSENT:
        problems.append(f"{where}: no target and no non-target disease: nothing to assess")
    problems += [f"{where}: target {lesion.lesion_id} must be measured at baseline, not "
                 f"{lesion.status}" for lesion in baseline.targets
                 if lesion.status is not LesionStatus.MEASURED]

    for tp in timepoints:
        if tp.modality in (Modality.CR, Modality.DX) and tp.slice_thickness_mm is not None:
            problems.append(f"time point '{tp.label}': slice_thickness_mm applies to CT/MR only")
    labels = Counter(tp.label for tp in timepoints)
    problems += [f"time point label '{label}' is used {n} times"
                 for label, n in labels.items() if n > 1]
    for earlier, later in pairwise(timepoints):
        if later.date <= earlier.date:
            problems.append(f"time point '{later.label}': date {later.date} is not after "
                            f"'{earlier.label}' ({earlier.date})")

    baseline_lesions = {lesion.lesion_id: lesion for lesion in baseline.targets}
    for tp in timepoints:
        where = f"time point '{tp.label}'"
        problems += _lesion_set_problems(tp, baseline_lesions, where)
        if tp is baseline:
            continue
        if baseline.non_target is NonTarget.PRESENT and tp.non_target not in (
                NonTarget.CR, NonTarget.NON_CR_NON_PD, NonTarget.PD, NonTarget.NE):
            problems.append(f"{where}: non_target must be one of 'CR', 'non-CR/non-PD', 'PD', "
                            "'NE' (non-target disease was present at baseline)")
        if baseline.non_target is NonTarget.ABSENT and tp.non_target not in (
                None, NonTarget.ABSENT):
            problems.append(f"{where}: non_target must be absent or null (no non-target disease "
                            "at baseline; new disease is reported as new_lesions)")
    return problems


def _lesion_set_problems(tp: Timepoint, baseline_lesions: Mapping[str, Lesion],
                         where: str) -> list[str]:
    problems: list[str] = []
    ids = Counter(lesion.lesion_id for lesion in tp.targets)
    problems += [f"{where}: target {lid} is listed {n} times" for lid, n in ids.items() if n > 1]
    problems += [f"{where}: target {lid} of the baseline is missing (report it as "
                 "not_evaluable if it was not assessed)"
                 for lid in baseline_lesions if lid not in ids]
    by_id = {lesion.lesion_id: lesion for lesion in tp.targets}
    for lesion in tp.targets:
        first = baseline_lesions.get(lesion.lesion_id)
        if first is None:
            problems.append(f"{where}: target {lesion.lesion_id} is not a baseline target "
                            "(targets are chosen at baseline only)")
            continue
        if lesion.nodal != first.nodal:
            problems.append(f"{where}: target {lesion.lesion_id}: nodal differs from baseline")
        if _organ_key(lesion) != _organ_key(first):
            problems.append(f"{where}: target {lesion.lesion_id}: organ differs from baseline")
        if lesion.status is LesionStatus.COALESCED:
            into = by_id.get(lesion.coalesced_into or "")
            if into is None or into is lesion or into.status is LesionStatus.COALESCED:
                problems.append(f"{where}: target {lesion.lesion_id}: coalesced_into must name "
                                "another target of this time point that is not itself coalesced")
    return problems


def _lesion_problems(lesion: Lesion) -> list[str]:
    """Shape problems of one lesion record (which fields its status requires or forbids)."""
    problems: list[str] = []
    if not lesion.lesion_id:
        problems.append("lesion identifier must not be empty")
    measured = lesion.status is LesionStatus.MEASURED
    if measured and (lesion.diameter_mm is None) == (lesion.fragments_mm is None):
        problems.append("status measured needs exactly one of diameter_mm or fragments_mm")
    if not measured and (lesion.diameter_mm is not None or lesion.fragments_mm is not None):
        problems.append(f"status {lesion.status} takes no diameter_mm or fragments_mm")
    if (lesion.status is LesionStatus.COALESCED) != (lesion.coalesced_into is not None):
        problems.append("coalesced_into is required with status coalesced, and only then")
    if lesion.diameter_mm is not None:
        problems += [f"diameter_mm {p}" for p in _size_problems(lesion.diameter_mm)]
        if lesion.diameter_mm == 0:
            problems.append("diameter_mm is 0: report it as disappeared")
    if lesion.fragments_mm is not None:
        if len(lesion.fragments_mm) < 2:
            problems.append("fragments_mm needs at least two fragments (else send diameter_mm)")
        for fragment in lesion.fragments_mm:
            problems += [f"fragment {fragment} {p}" for p in _size_problems(fragment)]
            if fragment == 0:
                problems.append("fragments must be larger than 0 mm")
    return problems


def _size_problems(value: Decimal) -> list[str]:
    if not value.is_finite():
        return ["must be a finite number"]
    if value < 0:
        return ["must not be negative"]
    if value > MAX_DIAMETER_MM:
        return [f"must be at most {MAX_DIAMETER_MM} mm"]
    if value != value.quantize(TENTH):
        return ["must have at most one decimal place (0.1 mm)"]
    return []


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------

_E = TypeVar("_E", bound=enum.StrEnum)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMEPOINT_KEYS: Final = frozenset(
    {"label", "date", "modality", "slice_thickness_mm", "targets", "non_target", "new_lesions"})
_TARGET_KEYS: Final = frozenset(
    {"lesion", "organ", "nodal", "status", "diameter_mm", "fragments_mm", "coalesced_into"})


def parse_request(data: Any) -> list[Timepoint]:
    """Validate and convert the evaluator's JSON request (see ``docs/recist.md``).

    Numbers must be JSON numbers; a float is read through its shortest representation
    (``Decimal(str(x))``) so ``32.1`` is exactly 32.1 mm. Diameters must be multiples of 0.1 mm and
    are rejected, not rounded, otherwise. At follow-ups ``organ`` and ``nodal`` may be omitted and
    are then taken from the baseline.

    Raises
    ------
    RecistInputError
        With one reason per problem found anywhere in the request (shape, types, values and the
        consistency checks of :func:`sequence_problems`).
    """
    reasons: list[str] = []
    if not isinstance(data, Mapping):
        raise RecistInputError(["the request body must be a JSON object"])
    unknown = set(data) - {"timepoints"}
    if unknown:
        reasons.append(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    raw_timepoints = data.get("timepoints")
    if not isinstance(raw_timepoints, list) or not raw_timepoints:
        raise RecistInputError(
            [*reasons, "timepoints must be a non-empty list, the first being the baseline"])

    baseline_targets: dict[str, tuple[str, bool]] = {}
    timepoints: list[Timepoint] = []
    for index, raw in enumerate(raw_timepoints):
        tp = _parse_timepoint(raw, f"timepoints[{index}]", index == 0, baseline_targets, reasons)
        if tp is not None:
            timepoints.append(tp)
    if not reasons:
        reasons += sequence_problems(timepoints)
    if reasons:
        raise RecistInputError(reasons)
    return timepoints


def _is_object(raw: Any, path: str, known: frozenset[str] | set[str], reasons: list[str]) -> bool:
    """Check that ``raw`` is a JSON object; a reason for it, or for its unknown keys."""
    if not isinstance(raw, Mapping):
        reasons.append(f"{path}: must be an object")
        return False
    unknown = set(raw) - known
    if unknown:
        reasons.append(f"{path}: unknown keys: {', '.join(sorted(map(str, unknown)))}")
    return True


def _parse_timepoint(raw: Any, path: str, is_baseline: bool,
                     baseline_targets: dict[str, tuple[str, bool]],
                     reasons: list[str]) -> Timepoint | None:
    start = len(reasons)
    if not _is_object(raw, path, _TIMEPOINT_KEYS, reasons):
        return None
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        reasons.append(f"{path}.label: must be a non-empty string")
    date = _parse_date(raw.get("date"), f"{path}.date", reasons)
    modality = _parse_enum(Modality, raw.get("modality"), f"{path}.modality", reasons,
                           required=is_baseline)
    thickness = _parse_number(raw.get("slice_thickness_mm"), f"{path}.slice_thickness_mm",
                              reasons, tenths=False)
    if thickness is not None and not 0 < thickness <= MAX_SLICE_THICKNESS_MM:
        reasons.append(f"{path}.slice_thickness_mm: must be > 0 and <= {MAX_SLICE_THICKNESS_MM}")
    non_target = _parse_enum(NonTarget, raw.get("non_target"), f"{path}.non_target", reasons,
                             required=is_baseline)
    new_lesions = raw.get("new_lesions", False if is_baseline else None)
    if not isinstance(new_lesions, bool):
        reasons.append(f"{path}.new_lesions: must be true or false")
    raw_targets = raw.get("targets", [])
    targets: list[Lesion] = []
    if not isinstance(raw_targets, list):
        reasons.append(f"{path}.targets: must be a list")
    else:
        for t_index, raw_target in enumerate(raw_targets):
            lesion = _parse_target(raw_target, f"{path}.targets[{t_index}]", is_baseline,
                                   baseline_targets, reasons)
            if lesion is not None:
                targets.append(lesion)
    if len(reasons) > start:
        return None
    assert isinstance(label, str) and date is not None and isinstance(new_lesions, bool)
    return Timepoint(label=label, date=date, modality=modality, slice_thickness_mm=thickness,
                     targets=targets, non_target=non_target, new_lesions=new_lesions)


def _parse_target(raw: Any, path: str, is_baseline: bool,
                  baseline_targets: dict[str, tuple[str, bool]],
                  reasons: list[str]) -> Lesion | None:
    start = len(reasons)
    if not _is_object(raw, path, _TARGET_KEYS, reasons):
        return None
    lesion_id = raw.get("lesion")
    if not isinstance(lesion_id, str) or not lesion_id.strip():
        reasons.append(f"{path}.lesion: must be a non-empty string")
        lesion_id = None
    inherited = baseline_targets.get(lesion_id or "") if not is_baseline else None
    hint = "" if is_baseline or inherited else " (not inherited: no such baseline target)"
    organ = raw.get("organ", inherited[0] if inherited else None)
    if not isinstance(organ, str) or not organ.strip():
        reasons.append(f"{path}.organ: must be a non-empty string{hint}")
    nodal = raw.get("nodal", inherited[1] if inherited else None)
    if not isinstance(nodal, bool):
        reasons.append(f"{path}.nodal: must be true or false{hint}")
    status = _parse_enum(LesionStatus, raw.get("status"), f"{path}.status", reasons,
                         required=True)
    diameter = _parse_number(raw.get("diameter_mm"), f"{path}.diameter_mm", reasons, tenths=True)
    fragments: tuple[Decimal, ...] | None = None
    raw_fragments = raw.get("fragments_mm")
    if raw_fragments is not None:
        if not isinstance(raw_fragments, list):
            reasons.append(f"{path}.fragments_mm: must be a list of numbers")
        else:
            parsed = [_parse_number(value, f"{path}.fragments_mm[{i}]", reasons, tenths=True)
                      for i, value in enumerate(raw_fragments)]
            fragments = tuple(value for value in parsed if value is not None)
    coalesced_into = raw.get("coalesced_into")
    if coalesced_into is not None and not isinstance(coalesced_into, str):
        reasons.append(f"{path}.coalesced_into: must be a string")
    if len(reasons) > start:
        return None
    assert isinstance(lesion_id, str) and isinstance(organ, str) and isinstance(nodal, bool)
    assert status is not None
    try:
        lesion = Lesion(lesion_id=lesion_id, organ=organ, nodal=nodal, status=status,
                        diameter_mm=diameter, fragments_mm=fragments,
                        coalesced_into=coalesced_into)
    except RecistInputError as error:
        reasons += [f"{path}: {reason}" for reason in error.reasons]
        return None
    if is_baseline:
        baseline_targets.setdefault(lesion_id, (organ, nodal))
    return lesion


def _parse_number(value: Any, path: str, reasons: list[str], *, tenths: bool) -> Decimal | None:
    """A JSON number as an exact Decimal; ``None`` when absent or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        reasons.append(f"{path}: must be a number")
        return None
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    problems = _size_problems(number) if tenths else (
        ["must be a finite number"] if not number.is_finite() else [])
    reasons += [f"{path}: {problem}" for problem in problems]
    return None if problems else number


def _parse_date(value: Any, path: str, reasons: list[str]) -> datetime.date | None:
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    reasons.append(f"{path}: must be a date as YYYY-MM-DD")
    return None


def _parse_enum(kind: type[_E], value: Any, path: str, reasons: list[str], *,
                required: bool) -> _E | None:
    if value is None:
        if required:
            reasons.append(f"{path}: is required")
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(f"'{member.value}'" for member in kind)
        reasons.append(f"{path}: must be one of {allowed}")
        return None


def evaluation_to_json(evaluation: Evaluation) -> dict[str, Any]:
    """Serialise an :class:`Evaluation` to JSON-ready types (numbers as floats, enums as str)."""
    return {
        "timepoints": [
            {
                "label": r.label,
                "sum_mm": _float(r.sum_mm),
                "sum_complete": r.sum_complete,
                "change_from_baseline_pct": _float(r.change_from_baseline_pct),
                "nadir_mm": _float(r.nadir_mm),
                "change_from_nadir_pct": _float(r.change_from_nadir_pct),
                "target_response": _str(r.target_response),
                "non_target_response": _str(r.non_target_response),
                "overall_response": _str(r.overall_response),
            }
            for r in evaluation.timepoints
        ],
        "best_overall_response": str(evaluation.best_overall_response),
        "baseline_problems": [
            {"lesion": p.lesion_id, "code": str(p.code), "detail": p.detail}
            for p in evaluation.baseline_problems
        ],
    }


# --------------------------------------------------------------------------------------------
# Arithmetic helpers (integer tenths of a millimetre)
# --------------------------------------------------------------------------------------------


def _tenths(value: Decimal) -> int:
    """Exact conversion of a multiple of 0.1 mm to integer tenths."""
    scaled = value * 10
    if scaled != scaled.to_integral_value():
        raise RecistInputError([f"{value} mm is not a multiple of 0.1 mm"])
    return int(scaled)


def _sum_of_diameters(targets: Sequence[Lesion]) -> tuple[int, bool]:
    """Sum over the assessed targets in 0.1 mm, and whether every target was assessed."""
    contributions = [lesion.contribution_tenths() for lesion in targets]
    return sum(c for c in contributions if c is not None), None not in contributions


def _mm(tenths: int | None) -> Decimal | None:
    return None if tenths is None else Decimal(tenths).scaleb(-1)


def _percent_change(value: int | None, reference: int | None) -> Decimal | None:
    """``100 * (value - reference) / reference`` rounded half away from zero to 0.1.

    Exact integer arithmetic; ``None`` when either is missing or the reference is 0 mm.
    """
    if value is None or reference is None or reference == 0:
        return None
    numerator = 1000 * (value - reference)  # in tenths of a percent
    quotient, remainder = divmod(abs(numerator), reference)
    if 2 * remainder >= reference:
        quotient += 1
    return Decimal(quotient if numerator >= 0 else -quotient).scaleb(-1)


def _organ_key(lesion: Lesion) -> str:
    """All lymph nodes are one organ (§4.2, FAQ); other organs compare case-insensitively."""
    return LYMPH_NODES if lesion.nodal else " ".join(lesion.organ.split()).casefold()


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _str(value: Response | None) -> str | None:
    return None if value is None else str(value)
