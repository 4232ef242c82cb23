"""The archive's index: projects, their members, and the Study/Series/Instance hierarchy.

Projects live here (not in ``collab``) because every stored object belongs to one and
``viewer`` must not import the apps above it (collab → annotations → viewer).
The DICOM files themselves are in the object store (:mod:`viewer.storage`); rows hold the
attributes QIDO-RS matches on and each instance's DICOM JSON metadata (bulk data excluded).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from viewer import rules


class Role(models.TextChoices):
    ORGANIZER = "organizer", "Organizer"
    READER = "reader", "Reader"
    VIEWER = "viewer", "Viewer"


def new_project_secret() -> str:
    return secrets.token_hex(32)


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    #: None (clinical use: files stored as sent) or {"profile": "basic", "options": [...]} (PS3.15 E).
    deidentification = models.JSONField(null=True, blank=True)
    #: Keys new UIDs, date shifts and pseudonyms. Never shown or exported.
    secret = models.CharField(max_length=64, default=new_project_secret, editable=False)
    #: Keep the pseudonym → original PatientID link (readable by organizers only), or keep nothing.
    keep_pseudonym_links = models.BooleanField(default=True)
    #: Blinded reading (e.g. a double-read trial): readers and viewers see only their own annotations;
    #: organizers see all.
    private_annotations = models.BooleanField(default=False)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"

    def has_role(self, minimum: str) -> bool:
        """What each role may do includes what every lower role may do (:func:`viewer.rules.has_role`)."""
        return rules.has_role(self.role, minimum)


class Study(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    patient_name = models.CharField(max_length=324, blank=True)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_birth_date = models.CharField(max_length=8, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)
    study_date = models.CharField(max_length=8, blank=True, help_text="DICOM DA, YYYYMMDD")
    study_time = models.CharField(max_length=16, blank=True)
    accession_number = models.CharField(max_length=16, blank=True)
    study_id = models.CharField(max_length=16, blank=True)
    study_description = models.CharField(max_length=64, blank=True)
    referring_physician_name = models.CharField(max_length=324, blank=True)
    #: The study-level DICOM JSON attributes of the first instance received.
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(fields=["project", "study_instance_uid"], name="study_uid_unique_in_project")
        ]
        indexes = [
            models.Index(fields=["project", "patient_id"]),
            models.Index(fields=["project", "study_date"]),
            models.Index(fields=["project", "accession_number"]),
        ]

    def __str__(self) -> str:
        return self.study_instance_uid


class Series(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="series")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["project", "series_instance_uid"], name="series_uid_unique_in_project")
        ]
        # The series of a page of studies (QIDO-RS, the worklist) by (project, study), whatever the
        # database's statistics: an index on the study alone loses to the project's.
        indexes = [models.Index(fields=["project", "modality"]),
                   models.Index(fields=["project", "study"], name="series_of_study")]

    def __str__(self) -> str:
        return self.series_instance_uid


class Instance(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="instances")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    bits_allocated = models.IntegerField(null=True, blank=True)
    number_of_frames = models.IntegerField(null=True, blank=True)
    #: SHA-256 of the stored file's bytes; also its key in the object store.
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    #: The instance's DICOM JSON (PS3.18 F.2) with bulk data replaced by BulkDataURI placeholders.
    metadata = models.JSONField(default=dict)
    #: Held for an organizer's review (pixels may carry burned-in text); only organizers see it.
    quarantined = models.BooleanField(default=False)
    quarantine_reasons = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "sop_instance_uid"], name="sop_uid_unique_in_project")
        ]
        indexes = [
            models.Index(fields=["project", "sop_class_uid"]),
            models.Index(fields=["project", "quarantined"]),
            # The instances of given series (counts, a series' slices), for any member.
            models.Index(fields=["project", "series", "quarantined"], name="instances_of_series"),
        ]
        ordering = ["instance_number", "id"]

    def __str__(self) -> str:
        return self.sop_instance_uid


class PseudonymLink(models.Model):
    """Which original PatientID a project pseudonym stands for. Organizers only; never exported."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pseudonym_links")
    original_patient_id = models.CharField(max_length=64)
    pseudonym = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "original_patient_id"], name="one_pseudonym_per_patient")
        ]


class UserPreset(models.Model):
    """A reader's own window preset (``viewer.user_presets``, ``/api/me/presets/``), offered in every
    project for images of its modality, before the built-in presets, in the reader's order."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="window_presets")
    modality = models.CharField(max_length=16)
    label = models.CharField(max_length=40)
    center = models.FloatField()
    width = models.FloatField()
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["user", "position"])]
        constraints = [models.CheckConstraint(condition=models.Q(width__gte=1), name="user_preset_width_at_least_1")]

    def __str__(self) -> str:
        return f"{self.label} ({self.modality})"
