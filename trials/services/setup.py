"""Setting a trial up (organizers): the trial, its subjects and their time points, the readers."""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import transaction

from audit.models import Action
from audit.services import record
from crossread.errors import BadRequest, Conflict
from trials.models import Read, Subject, Trial, TrialTimepoint
from trials.services.access import TrialAccess, User, require_organizer
from viewer.access import ProjectAccess, access_project
from viewer.models import Membership, Role, Study

_SLICE_THICKNESS = "00180050"


def is_text(value: Any, longest: int) -> bool:
    """A one-line name typed by a user: 1 to ``longest`` characters, none of them a control or
    format character (no newline, tab, NUL, zero-width or direction override to garble a page or an export)."""
    return isinstance(value, str) and bool(value.strip()) and len(value) <= longest and value.isprintable()


def usernames(users: Iterable[Any]) -> list[str]:
    return [u.get_username() for u in users]


def _users(project_access: ProjectAccess, names: Any, what: str, minimum: str) -> list[Any]:
    if not isinstance(names, list) or not all(isinstance(u, str) for u in names):
        raise BadRequest(f"{what} must be a list of user names.")
    found = []
    for name in names:
        membership = Membership.objects.select_related("user").filter(
            project=project_access.project, user__username=name).first()
        if membership is None or not membership.has_role(minimum):
            raise BadRequest(f"{what}: {name} is not a {minimum} of this project.")
        found.append(membership.user)
    return found


def create_trial(user: User, slug: str, *, name: Any, double_read: Any = True,
                 confirmation_required: Any = True, targets_by_length: Any = False, adjudicators: Any = ()) -> Trial:
    """A trial on the project. Its settings are set here, once: ``targets_by_length`` lets a non-nodal
    target be measured with a length (``trials.rules.measuring_kinds``)."""
    project_access = access_project(user, slug, minimum=Role.ORGANIZER)
    if not is_text(name, 64):
        raise BadRequest("name must be 1-64 printable characters.")
    if not all(isinstance(v, bool) for v in (double_read, confirmation_required, targets_by_length)):
        raise BadRequest("double_read, confirmation_required and targets_by_length must be true or false.")
    people = _users(project_access, list(adjudicators), "adjudicators", Role.READER)
    with transaction.atomic():
        if Trial.objects.filter(project=project_access.project).exists():
            raise Conflict("This project already has a trial.")
        trial = Trial.objects.create(project=project_access.project, name=name.strip(),
                                     double_read=double_read, confirmation_required=confirmation_required,
                                     targets_by_length=targets_by_length)
        trial.adjudicators.set(people)
        if double_read:  # blinded readers: neither sees the other's marks, in the viewer too
            project_access.project.private_annotations = True
            project_access.project.save(update_fields=["private_annotations"])
        record(Action.TRIAL_CREATED, actor=user, project=project_access.project, object_type="trial",
               object_id=str(trial.pk), name=trial.name, double_read=double_read,
               confirmation_required=confirmation_required, targets_by_length=targets_by_length,
               adjudicators=usernames(people))
    return trial


def _study_date(study: Study) -> datetime.date:
    try:
        return datetime.datetime.strptime(study.study_date, "%Y%m%d").date()
    except ValueError:
        raise BadRequest(f"Study {study.study_instance_uid} has no valid StudyDate.") from None


def _measured_series_facts(access: ProjectAccess, study: Study) -> tuple[str, Decimal | None]:
    """Modality and slice thickness of the study's first CT/MR (else radiograph) image series."""
    for instance in access.instances().filter(series__study=study).select_related("series").order_by(
            "series__series_number", "series__pk", "instance_number"):
        modality = instance.series.modality
        if modality in ("CT", "MR"):
            value = instance.metadata.get(_SLICE_THICKNESS, {}).get("Value")
            return modality, Decimal(str(value[0])) if value else None
        if modality in ("CR", "DX"):
            return modality, None
    raise BadRequest(f"Study {study.study_instance_uid} has no CT, MR, CR or DX images to measure.")


def add_subject(access: TrialAccess, *, label: Any, patient_id: Any) -> Subject:
    """Add a subject with every study of ``patient_id`` as a time point, oldest = baseline."""
    require_organizer(access)
    if not is_text(label, 32):
        raise BadRequest("label must be 1-32 printable characters.")
    if not isinstance(patient_id, str) or not patient_id:
        raise BadRequest("patient_id must be the PatientID of the subject's studies.")
    studies = list(access.project_access.studies().filter(patient_id=patient_id))
    if not studies:
        raise BadRequest("No study of this patient in the project.")
    dated = sorted(((_study_date(s), s) for s in studies), key=lambda pair: (pair[0], pair[1].study_time))
    days = [date for date, _ in dated]
    if len(set(days)) != len(days):
        raise BadRequest("Two studies of this patient share a date; time points need distinct dates.")
    facts = [_measured_series_facts(access.project_access, study) for _, study in dated]
    with transaction.atomic():
        if Subject.objects.filter(trial=access.trial, label=label.strip()).exists() or \
                Subject.objects.filter(trial=access.trial, patient_id=patient_id).exists():
            raise Conflict("A subject with this label or patient is already in the trial.")
        subject = Subject.objects.create(trial=access.trial, label=label.strip(), patient_id=patient_id)
        for order, ((date, study), (modality, thickness)) in enumerate(zip(dated, facts, strict=True)):
            TrialTimepoint.objects.create(
                subject=subject, study=study, order=order, date=date, modality=modality,
                slice_thickness_mm=thickness, label="baseline" if order == 0 else f"follow-up {order}")
        # the label only: a PatientID never goes into the audit trail
        record(Action.TRIAL_SUBJECT_ADDED, actor=access.user, project=access.trial.project, object_type="subject",
               object_id=str(subject.pk), label=subject.label, timepoints=len(dated))
    return subject


def assign_readers(access: TrialAccess, *, readers: Any) -> list[Read]:
    """Give every subject one read per reader (two for a double read), in a random order per reader."""
    require_organizer(access)
    people = _users(access.project_access, readers, "readers", Role.READER)
    expected = 2 if access.trial.double_read else 1
    if len({p.pk for p in people}) != expected:
        raise BadRequest(f"This trial needs exactly {expected} distinct reader(s).")
    adjudicators = set(access.trial.adjudicators.values_list("pk", flat=True))
    if any(p.pk in adjudicators for p in people):
        raise BadRequest("An adjudicator cannot read the subjects they adjudicate.")
    created = []
    with transaction.atomic():
        for subject in access.trial.subjects.all():
            for person in people:
                read, new = Read.objects.get_or_create(
                    trial=access.trial, subject=subject, reader=person,
                    defaults={"order_key": secrets.randbits(62)})
                if new:
                    created.append(read)
        record(Action.TRIAL_READERS_ASSIGNED, actor=access.user, project=access.trial.project, object_type="trial",
               object_id=str(access.trial.pk), readers=usernames(people), reads=[r.pk for r in created])
    return created
