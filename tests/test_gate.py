"""The access gate (viewer.access and the pure rules of viewer.rules, collab.visibility and trials.rules):
one matrix of the rules, the ORM filters held to them, the paths that used to go around the gate, and a structural check that no
module outside the gate queries Study, Series or Instance rows for a caller.

The HTTP answers of every endpoint for an instance in quarantine are rows of
tests/test_permission_matrix.py (``held_cells``).
"""

from __future__ import annotations

import ast
import json
import itertools
from pathlib import Path

import pytest

from annotations import services as annotation_services
from annotations.models import Annotation
from collab import services as collab_services
from collab.services import live as collab_live
from collab import visibility
from collab import protocol
from crossread.errors import BadRequest, DomainError, ErrorCode, NotFound
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import create_user
from trials import rules as trial_rules
from trials import services as trial_services
from trials.models import Read, ReadStatus, Subject, Trial
from trials.services import access as trial_access
from trials.services import reading as trial_reading
from viewer import rules
from viewer.access import access_project
from viewer.ingest import ingest_bytes
from viewer.models import Instance, Membership

REPO = Path(__file__).resolve().parent.parent
ROLES = (None, "viewer", "reader", "organizer")


# ------------------------------------------------------------------------------------------------
# The rules, as one matrix
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("quarantined", (False, True))
def test_who_reaches_an_instance(role, quarantined):
    expected = role is not None and (not quarantined or role == "organizer")
    assert rules.sees_instance(role, quarantined=quarantined) is expected


def test_roles_include_the_lower_ones():
    assert [r for r in ROLES if rules.has_role(r, "reader")] == ["reader", "organizer"]
    assert not rules.has_role(None, "viewer")
    assert not rules.has_role("someone", "viewer")  # an unknown role is no role


@pytest.mark.parametrize(("role", "own", "private", "quarantined"),
                         list(itertools.product(ROLES, (False, True), (False, True), (False, True))))
def test_who_sees_an_annotation(role, own, private, quarantined):
    expected = (
        role is not None
        and (not quarantined or role == "organizer")
        and (own or not private or role == "organizer")
    )
    assert rules.sees_project_annotation(role, own=own, private=private, quarantined=quarantined) is expected


@pytest.mark.parametrize(("authenticated", "role", "seat", "session_organizer", "seat_required"),
                         list(itertools.product((False, True), ROLES, (None, "reader", "observer"), (False, True),
                                                (False, True))))
def test_who_reaches_a_reading_session(authenticated, role, seat, session_organizer, seat_required):
    manages = visibility.manages_session(is_session_organizer=session_organizer, project_role=role)
    assert manages is (session_organizer or role == "organizer")
    decided = visibility.decide_seat(authenticated=authenticated, project_role=role, seat_role=seat,
                                     manages=manages, seat_required=seat_required)
    if not authenticated:
        assert decided == "not_authenticated"
    elif role is None:
        assert decided == "not_found"  # a session of a project one is not in does not exist for them
    elif seat is None and (seat_required or not manages):
        assert decided == "forbidden"
    else:
        assert decided is None


@pytest.mark.parametrize(("active", "role", "seat", "session_organizer", "seat_required"),
                         list(itertools.product((None, False, True), ROLES, (None, "reader", "observer"), (False, True),
                                                (False, True))))
def test_the_seat_rule_over_the_loaded_facts(active, role, seat, session_organizer, seat_required):
    """judge_seat: what access_session and the hubs' check both answer from collab.access.load_seats' facts
    (``active`` None: no user by that name)."""
    session = visibility.SessionFacts("blinded", "active", 1, 7 if session_organizer else 8, False)
    person = visibility.PersonFacts(None if active is None else 7, bool(active), role, seat)
    decision = visibility.judge_seat(session, "someone", person, seat_required=seat_required)
    manages = active is not None and (session_organizer or role == "organizer")
    assert decision.refusal == visibility.decide_seat(authenticated=bool(active), project_role=role, seat_role=seat,
                                                      manages=manages, seat_required=seat_required)
    if decision.refusal is not None:
        assert (decision.seat, decision.grant, decision.manages) == (None, None, False)
    elif seat is None:
        assert decision.seat is None and decision.grant is None and decision.manages
    else:
        assert decision.seat == visibility.Seat("someone", seat, manages, role == "organizer")
        assert decision.grant == visibility.Grant(decision.seat, role, "active", "blinded")


# ------------------------------------------------------------------------------------------------
# Trials: the blinding of reads (trials.rules), as one matrix
# ------------------------------------------------------------------------------------------------

ANY, DONE, NONE = frozenset(trial_rules.STATUSES), frozenset({"signed", "locked"}), frozenset()

#: Written by hand, not derived from the rule: (project role, listed as adjudicator) -> the statuses
#: of the reads seen, (own reads, others' reads). The trial role is the adjudicator flag and whether
#: the read is one's own (a reader's); an adjudicator who also reads (the services refuse to assign
#: one, an admin could) sees no draft, not even their own.
SEES_READ = {
    (None, False): (NONE, NONE),  # not a member: the trial does not exist for them
    (None, True): (NONE, NONE),
    ("viewer", False): (ANY, NONE),  # a reader demoted to viewer keeps their reads
    ("viewer", True): (DONE, DONE),
    ("reader", False): (ANY, NONE),
    ("reader", True): (DONE, DONE),
    ("organizer", False): (ANY, ANY),
    ("organizer", True): (ANY, ANY),
}

#: (project role, listed as adjudicator) -> sees the results (dashboard, subjects, scan dates).
SEES_RESULTS = {
    (None, False): False, (None, True): False,
    ("viewer", False): False, ("viewer", True): True,
    ("reader", False): False, ("reader", True): True,
    ("organizer", False): True, ("organizer", True): True,
}

TRIAL_CELLS = list(itertools.product(ROLES, (False, True), (False, True), trial_rules.STATUSES))


def test_the_trial_tables_cover_every_cell():
    assert set(SEES_READ) == set(SEES_RESULTS) == set(itertools.product(ROLES, (False, True)))


@pytest.mark.parametrize(("role", "adjudicator", "own", "status"), TRIAL_CELLS)
def test_who_sees_a_trial_read(role, adjudicator, own, status):
    own_statuses, others_statuses = SEES_READ[(role, adjudicator)]
    expected = status in (own_statuses if own else others_statuses)
    assert trial_rules.sees_read(role, adjudicator=adjudicator, own=own, status=status) is expected


@pytest.mark.parametrize(("role", "adjudicator"), list(itertools.product(ROLES, (False, True))))
def test_who_sees_trial_results_dates_and_subjects(role, adjudicator):
    expected = SEES_RESULTS[(role, adjudicator)]
    assert trial_rules.sees_results(role, adjudicator=adjudicator) is expected
    assert trial_rules.sees_scan_dates(role, adjudicator=adjudicator) is expected
    assert trial_rules.sees_subject(role, adjudicator=adjudicator) is expected
    assert trial_rules.organizes(role) is (role == "organizer")
    assert trial_rules.adjudicates(role, adjudicator=adjudicator) is (role is not None and adjudicator)


@pytest.mark.parametrize(("role", "own", "status"), list(itertools.product(ROLES, (False, True), trial_rules.STATUSES)))
def test_who_writes_a_trial_read(role, own, status):
    # A reader demoted to viewer keeps seeing their reads but writes none of them.
    expected = "forbidden" if not own or role in (None, "viewer") else (None if status == "draft" else "signed")
    assert trial_rules.decide_write(role, own=own, status=status) == expected


@pytest.mark.parametrize(("role", "adjudicator", "state"), list(itertools.product(
    ROLES, (False, True), ("reading", "agreed", "needs_adjudication", "adjudicated", "done"))))
def test_who_adjudicates_a_subject(role, adjudicator, state):
    expected = role is not None and adjudicator and state == "needs_adjudication"
    assert trial_rules.may_adjudicate(role, adjudicator=adjudicator, state=state) is expected


# ------------------------------------------------------------------------------------------------
# The ORM side of the rules
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def held_world(team):
    """A shown and a held CT image in the team's project; an annotation of each member's on each."""
    shown, held = ct_dataset(), ct_dataset()
    for ds in (shown, held):
        assert ingest_bytes(team["project"], to_bytes(ds)).ok
    Instance.objects.filter(sop_instance_uid=held.SOPInstanceUID).update(quarantined=True)
    for role in ("organizer", "reader"):
        for ds in (shown, held):
            Annotation.objects.create(
                project=team["project"], instance=Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID),
                author=team[role], kind="point", points=[[1, 1]],
            )
    return team, shown, held


@pytest.mark.django_db
@pytest.mark.parametrize("private", (False, True))
def test_the_annotation_lists_decide_as_the_rule(held_world, private):
    team, _, _ = held_world
    team["project"].private_annotations = private
    team["project"].save()
    for role in ("organizer", "reader", "viewer"):
        access = access_project(team[role], "trial")
        listed = set(annotation_services.visible_annotations(access).values_list("pk", flat=True))
        expected = {
            a.pk for a in Annotation.objects.select_related("instance")
            if rules.sees_project_annotation(
                role, own=a.author_id == team[role].pk, private=private, quarantined=a.instance.quarantined)
        }
        assert listed == expected, role
        assert expected or (role, private) == ("viewer", True)  # the comparison is not an empty one


@pytest.mark.django_db
def test_the_gate_hides_held_rows_from_readers(held_world):
    team, shown, held = held_world
    reader, organizer = access_project(team["reader"], "trial"), access_project(team["organizer"], "trial")
    assert set(reader.instances().values_list("sop_instance_uid", flat=True)) == {shown.SOPInstanceUID}
    assert set(organizer.instances().values_list("sop_instance_uid", flat=True)) == {
        shown.SOPInstanceUID, held.SOPInstanceUID}
    # the held image's own series is hidden with it; the study holds a shown image too
    assert held.SeriesInstanceUID not in set(reader.series().values_list("series_instance_uid", flat=True))
    assert held.SeriesInstanceUID in set(organizer.series().values_list("series_instance_uid", flat=True))
    assert reader.instance(shown.SOPInstanceUID).series.study.study_instance_uid == shown.StudyInstanceUID
    with pytest.raises(Exception) as unknown:
        reader.instance("1.2.3")
    with pytest.raises(Exception) as hidden:
        reader.instance(held.SOPInstanceUID)
    assert (type(hidden.value), str(hidden.value)) == (type(unknown.value), str(unknown.value))
    assert organizer.instance(held.SOPInstanceUID).quarantined


@pytest.mark.django_db
def test_a_study_of_held_images_only_is_not_found_by_a_reader(team):
    held = ct_dataset()
    assert ingest_bytes(team["project"], to_bytes(held)).ok
    Instance.objects.filter(sop_instance_uid=held.SOPInstanceUID).update(quarantined=True)
    assert access_project(team["organizer"], "trial").study(held.StudyInstanceUID)
    with pytest.raises(Exception, match="No such study"):
        access_project(team["reader"], "trial").study(held.StudyInstanceUID)


# ------------------------------------------------------------------------------------------------
# Trials: the reads a caller sees (visible_reads) are those trials.rules.sees_read admits
# ------------------------------------------------------------------------------------------------

#: (project role, listed as adjudicator, has reads of their own): one member of the trial's project each.
TRIAL_PEOPLE = list(itertools.product(("viewer", "reader", "organizer"), (False, True), (False, True)))


@pytest.fixture
def trial_world(team):
    """A trial in the team's project with one member per cell of TRIAL_PEOPLE; each who reads has a
    read in every status (one subject per status), so every read is somebody's own and others'."""
    trial = Trial.objects.create(project=team["project"], name="Blinding")
    subjects = {status: Subject.objects.create(trial=trial, label=f"S-{status}", patient_id=f"P-{status}")
                for status in trial_rules.STATUSES}
    people = {}
    for number, (role, adjudicator, reads) in enumerate(TRIAL_PEOPLE):
        user = create_user(f"{role}-{'adj' if adjudicator else 'not'}-{'reads' if reads else 'none'}")
        Membership.objects.create(project=team["project"], user=user, role=role)
        if adjudicator:
            trial.adjudicators.add(user)
        if reads:
            for status, subject in subjects.items():
                Read.objects.create(trial=trial, subject=subject, reader=user, status=status, order_key=number)
        people[(role, adjudicator, reads)] = user
    return team, trial, people


def test_the_rule_knows_every_read_status():
    assert set(ReadStatus.values) == set(trial_rules.STATUSES)


@pytest.mark.django_db
def test_the_trial_role_is_a_fact_read_once_per_access(trial_world, django_assert_num_queries):
    _, _, people = trial_world
    for user in people.values():
        access = trial_services.access_trial(user, "trial")
        with django_assert_num_queries(1):  # whether the caller adjudicates, however often it is asked
            access.sees_dates, access.sees_results, access.is_adjudicator, trial_services.visible_reads(access)


@pytest.mark.django_db
def test_visible_reads_are_the_reads_the_rule_admits(trial_world):
    team, trial, people = trial_world
    reads = list(Read.objects.filter(trial=trial))
    cells = set()
    for (role, adjudicator, _), user in people.items():
        access = trial_services.access_trial(user, "trial")
        assert (access.role, access.is_adjudicator) == (role, adjudicator)
        listed = set(trial_services.visible_reads(access).values_list("pk", flat=True))
        expected = set()
        for read in reads:
            own = read.reader_id == user.pk
            cells.add((role, adjudicator, own, read.status))
            if trial_rules.sees_read(role, adjudicator=adjudicator, own=own, status=read.status):
                expected.add(read.pk)
        assert listed == expected, (role, adjudicator, user.username)
        # one read at a time, as the read pages and REST views reach it: the same answer
        for read in reads:
            try:
                found = trial_access.access_read(access, read.pk).pk == read.pk
            except NotFound:
                found = False
            assert found is (read.pk in expected), (role, adjudicator, read.status)
        assert access.sees_results is trial_rules.sees_results(role, adjudicator=adjudicator)
        assert access.sees_dates is trial_rules.sees_scan_dates(role, adjudicator=adjudicator)
    # every case of the rule met a real row (the hand-written table holds the rule itself)
    assert cells == {(r, a, o, s) for r, a, o, s in TRIAL_CELLS if r is not None}


@pytest.mark.django_db
def test_the_trial_does_not_exist_for_a_non_member(trial_world):
    team, trial, _ = trial_world
    trial.adjudicators.add(team["outsider"])
    with pytest.raises(NotFound):
        trial_services.access_trial(team["outsider"], "trial")


@pytest.mark.django_db
def test_subjects_and_writes_decide_as_the_rules(trial_world):
    team, trial, people = trial_world
    subject = Subject.objects.get(trial=trial, label="S-draft")
    for (role, adjudicator, _), user in people.items():
        access = trial_services.access_trial(user, "trial")
        try:
            found = trial_access.access_subject(access, subject.pk) == subject
        except NotFound:
            found = False
        assert found is trial_rules.sees_subject(role, adjudicator=adjudicator), (role, adjudicator)
        for read in trial_services.visible_reads(access):
            refusal = trial_rules.decide_write(role, own=read.reader_id == user.pk, status=read.status)
            try:
                trial_reading.check_draft_owner(access, read)
                refused = None
            except DomainError as error:
                refused = error.code
            assert refused == {None: None, "forbidden": ErrorCode.FORBIDDEN, "signed": ErrorCode.CONFLICT}[refusal]


# ------------------------------------------------------------------------------------------------
# Reading sessions: live writes and the snapshot go through the gate too
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def held_session(team, held_world):
    _, shown, held = held_world
    session = collab_services.create_session(
        team["organizer"], project="trial", title="Held", studies=[shown.StudyInstanceUID, held.StudyInstanceUID],
        status="active", participants=[("reader", "reader")])
    return team, session, shown, held


def _create(user, session, sop):
    message = protocol.parse(json.dumps({"type": "annotation.create", "ref": f"r-{sop[-6:]}", "annotation": {
        "instance": sop, "frame": 1, "kind": "point", "points": [[3, 3]], "label": ""}}))
    return collab_services.create_annotation(user, session.pk, message)


@pytest.mark.django_db
def test_a_live_write_on_a_held_image_is_refused_as_an_unknown_one(held_session):
    team, session, shown, held = held_session
    with pytest.raises(BadRequest) as hidden:
        _create(team["reader"], session, held.SOPInstanceUID)
    with pytest.raises(BadRequest) as unknown:
        _create(team["reader"], session, "1.2.3.4")
    assert hidden.value.detail == unknown.value.detail
    assert not Annotation.objects.filter(session_id=session.pk).exists()
    assert _create(team["reader"], session, shown.SOPInstanceUID)  # the same path works on a shown one


@pytest.mark.django_db
def test_a_remembered_instance_is_checked_again_for_each_writer(held_session):
    """A hub remembers instances for all its participants: an organizer's lookup of a held image must
    not let a reader's write through."""
    team, session, _, held = held_session
    organizer = access_project(team["organizer"], "trial")
    memo = {held.SOPInstanceUID: organizer.instance(held.SOPInstanceUID)}
    reader = collab_services.seated_access(team["reader"], session.pk)
    assert collab_live._instance_in_session(reader, held.SOPInstanceUID, memo) is None


@pytest.mark.django_db
def test_the_snapshot_hides_marks_on_held_images(held_session):
    team, session, shown, held = held_session
    for ds in (shown, held):
        Annotation.objects.create(project=team["project"], session_id=session.pk, author=team["organizer"],
                                  instance=Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID),
                                  kind="point", points=[[1, 1]])
    seen = {a["instance"] for a in collab_services.snapshot(collab_services.seated_access(team["reader"], session.pk))["annotations"]}
    assert seen == {shown.SOPInstanceUID}


# ------------------------------------------------------------------------------------------------
# Structure: only the gate queries the archive's rows for a caller
# ------------------------------------------------------------------------------------------------

#: Modules that reach Study, Series or Instance rows without the gate, and why. Everything else must
#: go through viewer.access.ProjectAccess. The test also fails when a module here no longer needs to be.
ALLOWED = {
    "viewer/access.py": "the gate itself",
    "viewer/ingest.py": "writes the index rows of new instances (no caller's read)",
    "demo/management/commands/load_demo.py": "the demo loader, a command, not a caller's request",
    "demo/scale.py": "a synthetic index for measuring searches at scale (benchmarks and plan tests), not a request",
}

_MODELS = {"Study", "Series", "Instance"}
_RELATED = {"studies", "series", "instances"}
_QUERYSET_METHODS = {"all", "filter", "exclude", "get", "first", "count", "exists", "values", "values_list",
                     "order_by", "select_related", "select_for_update", "update", "delete", "create", "get_or_create"}


def _direct_queries(tree: ast.AST) -> list[int]:
    """Lines of ``Model.objects`` for the archive's models, and of related managers used as querysets
    (``project.studies.filter(...)``; the gate's ``access.studies().filter`` is a call, not a manager)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if node.attr == "objects" and isinstance(node.value, ast.Name) and node.value.id in _MODELS:
            lines.append(node.lineno)
        elif (node.attr in _QUERYSET_METHODS and isinstance(node.value, ast.Attribute)
              and node.value.attr in _RELATED and not isinstance(node.value.value, ast.Call)):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_gate_queries_the_archive_rows():
    offenders, found = [], set()
    for path in sorted(REPO.glob("*/**/*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative.split("/")[0] in ("tests", "bench", ".venv", "data") or "/migrations/" in relative:
            continue
        lines = _direct_queries(ast.parse(path.read_text(), relative))
        if not lines:
            continue
        found.add(relative)
        if relative not in ALLOWED:
            offenders.append(f"{relative}: lines {lines}")
    assert not offenders, "query through viewer.access.ProjectAccess instead:\n" + "\n".join(offenders)
    assert not set(ALLOWED) - found, "these no longer query directly: take them off the list"


def test_the_structural_check_finds_direct_queries():
    """The check itself: it finds each form it must find, and leaves the gate's calls alone."""
    code = ("Instance.objects.filter(x=1)\nproject.studies.filter(a=1)\nstudy.series.all()\n"
            "access.studies().filter(a=1)\naccess.instances()\nhub.instances = {}\n")
    assert _direct_queries(ast.parse(code)) == [1, 2, 3]
