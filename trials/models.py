"""RECIST 1.1 trials: subjects and their time points, blinded reads, lesions, adjudication.

A trial is one project (``viewer.models.Project``). A *subject* is a patient of the archive
(PatientID) under a pseudonymous label; its *time points* are its studies, baseline first. A *read*
is one reader's assessment of one subject over all its time points. Writes go through
:mod:`trials.services`, never the ORM directly.

Lesions belong to a read (readers never share lesions: blinding). Each lesion has one tracking
UID, kept at every time point and written into the DICOM SR. A lesion's assessment at a time point
points at the reader's own bidirectional :class:`annotations.models.Annotation`; signing the read
copies the axes and lengths into the assessment, so a later edit of the annotation cannot change
a signed read.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotations.models import Annotation
from trials import rules
from viewer.models import Project, Study


class Trial(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="trial")
    name = models.CharField(max_length=64)
    #: Two independent reads per subject, adjudicated where their overall responses differ.
    double_read = models.BooleanField(default=True)
    #: Readers read blind: the archive hides the trial's studies from them and masks those they read
    #: (no patient name or ID, dates or study descriptions; ``trials.blinding``, ``viewer.blinding``).
    blinded = models.BooleanField(default=True)
    #: RECIST 1.1 §4.6.1: CR and PR need confirmation for the best overall response.
    confirmation_required = models.BooleanField(default=True)
    #: A non-nodal target (and a non-nodal new lesion) may be measured with a length, its long axis,
    #: instead of a bidirectional (RECIST 1.1 §3.1.1: the longest diameter); nodes always need the
    #: bidirectional's short axis. ``trials.rules.measuring_kinds`` decides. Set when the trial is created.
    targets_by_length = models.BooleanField(default=False)
    #: Users who resolve disagreements; they never read the trial's subjects themselves.
    adjudicators = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="adjudicated_trials")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Subject(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="subjects")
    #: Pseudonymous label shown to readers ("S001"); never the PatientID.
    label = models.CharField(max_length=32)
    #: PatientID of the subject's studies in the archive.
    patient_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "label"], name="subject_label_unique_in_trial"),
            models.UniqueConstraint(fields=["trial", "patient_id"], name="subject_patient_unique_in_trial"),
        ]

    def __str__(self) -> str:
        return self.label


class TrialTimepoint(models.Model):
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="timepoints")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="trial_timepoints")
    #: "baseline", "follow-up 1", ...
    label = models.CharField(max_length=32)
    #: 0 = baseline.
    order = models.PositiveIntegerField()
    date = models.DateField()
    modality = models.CharField(max_length=16)
    #: Of the measured series (CT/MR); decides measurability at baseline (RECIST Appendix II).
    slice_thickness_mm = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)

    class Meta:
        ordering = ["subject", "order"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "order"], name="timepoint_order_unique"),
            models.UniqueConstraint(fields=["subject", "study"], name="timepoint_study_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.label}"


class ReadStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    #: Signed by the reader: nothing of it can change any more.
    SIGNED = "signed", "Signed"
    #: Signed, and the subject's result is final (reads agree, adjudicated, or single read).
    LOCKED = "locked", "Locked"


class Read(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="reads")
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="reads")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trial_reads")
    status = models.CharField(max_length=8, choices=ReadStatus.choices, default=ReadStatus.DRAFT)
    #: Random key: each reader's worklist is sorted by it (case order randomised per reader).
    order_key = models.BigIntegerField()
    signed_at = models.DateTimeField(null=True, blank=True)
    #: The RECIST table frozen at signing (``recist.evaluation_to_json``).
    result = models.JSONField(null=True, blank=True)
    #: SR instances exported into the archive: ``[{"timepoint", "study", "series", "sop"}]``.
    sr_instances = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order_key", "pk"]
        constraints = [models.UniqueConstraint(fields=["subject", "reader"], name="one_read_per_reader_and_subject")]

    def __str__(self) -> str:
        return f"read {self.pk} of {self.subject} by {self.reader}"

    @property
    def is_signed(self) -> bool:
        return rules.is_signed(self.status)


class LesionRole(models.TextChoices):
    TARGET = "target", "Target"
    NON_TARGET = "non_target", "Non-target"
    NEW = "new", "New lesion"


class Lesion(models.Model):
    read = models.ForeignKey(Read, on_delete=models.CASCADE, related_name="lesions")
    role = models.CharField(max_length=16, choices=LesionRole.choices)
    #: "T1", "NT1", "N1": stable within the read.
    identifier = models.CharField(max_length=16)
    organ = models.CharField(max_length=64)
    nodal = models.BooleanField(default=False)
    #: DICOM Tracking Unique Identifier, the same at every time point.
    tracking_uid = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["read", "role", "pk"]
        constraints = [models.UniqueConstraint(fields=["read", "identifier"], name="lesion_identifier_unique_in_read")]

    def __str__(self) -> str:
        return self.identifier


class Assessment(models.Model):
    """A lesion at one time point: status and, when measured, the reader's bidirectional."""

    lesion = models.ForeignKey(Lesion, on_delete=models.CASCADE, related_name="assessments")
    timepoint = models.ForeignKey(TrialTimepoint, on_delete=models.CASCADE, related_name="assessments")
    #: See ``annotations.sr.ROLE_STATUSES``.
    status = models.CharField(max_length=16)
    annotation = models.ForeignKey(Annotation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    #: Frozen at signing: lengths in mm, points, image.
    long_axis_mm = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    short_axis_mm = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    points = models.JSONField(null=True, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    frame = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["timepoint__order", "lesion__pk"]
        constraints = [models.UniqueConstraint(fields=["lesion", "timepoint"], name="one_assessment_per_timepoint")]


class Adjudication(models.Model):
    subject = models.OneToOneField(Subject, on_delete=models.CASCADE, related_name="adjudication")
    chosen_read = models.ForeignKey(Read, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="adjudication_has_reason")]


class ReadMark(models.Model):
    """A mark drawn for a read (in the read's viewer): the read's own, whichever lesion it shows.

    The annotation is the reader's; this row says which read, time point (the study of its image) and,
    once named, which lesion it belongs to. The read's viewer lists only these marks; the measurement
    an assessment rests on is one of them (``Assessment.annotation``).
    """

    read = models.ForeignKey(Read, on_delete=models.CASCADE, related_name="marks")
    annotation = models.OneToOneField(Annotation, on_delete=models.CASCADE, related_name="read_mark")
    timepoint = models.ForeignKey(TrialTimepoint, on_delete=models.CASCADE, related_name="+")
    lesion = models.ForeignKey(Lesion, on_delete=models.SET_NULL, null=True, blank=True, related_name="marks")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["read", "pk"]

    def __str__(self) -> str:
        return f"mark {self.annotation_id} of read {self.read_id}"
