"""The facts of a blinded trial reader's blinding, for the access gate (:mod:`viewer.blinding`).

A member who reads subjects of the project's trial, when the trial is blinded, is blinded: the
trial's studies are hidden from their listings, and those of the subjects they read are masked as
the subject's label and the time point's label. Organizers (decided by the gate) and the trial's
adjudicators are not blinded. Registered with the gate when the app is ready (``trials.apps``).

The gate remembers decisions for a second (``viewer.grants``): creating or deleting a read, changing
a trial, a subject or a time point sends ``access_changed``.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save

from trials.models import Read, Subject, Trial, TrialTimepoint
from viewer.blinding import Blinding, Mask
from viewer.grants import access_changed
from viewer.models import Project


def load_blinding(project: Project, user_id: int) -> Blinding | None:
    """The member's blinding in the project's trial: one query for most members, two for a reader."""
    subjects = set(
        Read.objects.filter(trial__project=project, trial__blinded=True, reader_id=user_id)
        .exclude(trial__adjudicators__pk=user_id)
        .values_list("subject_id", flat=True)
    )
    if not subjects:
        return None
    hidden: set[int] = set()
    masks: dict[int, Mask] = {}
    for study_id, subject_id, label, timepoint in TrialTimepoint.objects.filter(
        subject__trial__project=project
    ).values_list("study_id", "subject_id", "subject__label", "label"):
        hidden.add(study_id)
        if subject_id in subjects:
            masks[study_id] = Mask(patient=label, description=timepoint)
    return Blinding(frozenset(hidden), masks)


def _changed(sender: Any, **kwargs: Any) -> None:
    access_changed.send(sender=sender)


def _read_changed(sender: Any, created: bool = True, **kwargs: Any) -> None:
    if created:  # (a read's own progress changes nobody's blinding)
        access_changed.send(sender=sender)


def connect() -> None:
    post_save.connect(_read_changed, sender=Read, dispatch_uid="trials.blinding-read-saved")
    post_delete.connect(_changed, sender=Read, dispatch_uid="trials.blinding-read-deleted")
    for model in (Trial, Subject, TrialTimepoint):
        post_save.connect(_changed, sender=model, dispatch_uid=f"trials.blinding-saved-{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"trials.blinding-deleted-{model.__name__}")
    m2m_changed.connect(_changed, sender=Trial.adjudicators.through, dispatch_uid="trials.blinding-adjudicators")
