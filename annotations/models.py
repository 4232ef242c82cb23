"""Stored annotations: measurements and marks drawn on one frame of one instance, or on a
reformatted plane of a series (``plane``).

Points are image pixel coordinates ``[[x, y], ...]`` (x = column, y = row, ``(0, 0)`` the top-left
corner of the top-left pixel; see :mod:`annotations.geometry`). ``measurements`` is what
:func:`annotations.geometry.measure` returned when the points were last written, computed on the
server from the stored pixels. Writes go through :mod:`annotations.services`, never the ORM.

Deletion is soft (``deleted``): a deleted annotation keeps its row and gets a new version, so a
reader who reconnects can be told what disappeared, and the audit trail keeps who drew what.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotations.geometry import ShapeKind
from viewer.models import Instance, Project


class Kind(models.TextChoices):
    LENGTH = ShapeKind.LENGTH.value, "Length"
    BIDIRECTIONAL = ShapeKind.BIDIRECTIONAL.value, "Bidirectional"
    ELLIPSE = ShapeKind.ELLIPSE.value, "Ellipse ROI"
    FREEHAND = ShapeKind.FREEHAND.value, "Freehand ROI"
    ARROW = ShapeKind.ARROW.value, "Arrow"
    POINT = ShapeKind.POINT.value, "Point"
    ANGLE = ShapeKind.ANGLE.value, "Angle"
    COBB = ShapeKind.COBB.value, "Cobb angle"


class Annotation(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="annotations")
    #: 1-based frame number within the instance.
    frame = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    #: ``[[x, y], ...]`` in image pixel coordinates.
    points = models.JSONField()
    label = models.CharField(max_length=200, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    #: Starts at 1; every write (points, label, deletion) adds 1. Updates name the version they
    #: saw, and a stale one is a conflict.
    version = models.PositiveIntegerField(default=1)
    #: What :func:`annotations.geometry.measure` returned, with the measurement's ``unit`` (``"mm"``,
    #: ``"um"`` on a whole-slide image, ``"px"``, ``"deg"`` for angles) and ``calibration``, the spacing
    #: it was computed with (:class:`annotations.geometry.CalibrationSource`).
    measurements = models.JSONField(default=dict)
    #: A mark on a reformatted plane (MPR) of the instance's series, else null: ``{"series", "plane",
    #: "index"}`` and the plane's geometry when it was drawn (``position`` of its top left pixel,
    #: ``orientation`` (row then column cosines), ``pixel_spacing``, ``spacing``, ``normal``, ``rows``,
    #: ``columns``; see :func:`annotations.services.check_plane`). ``points`` are then that plane's
    #: image coordinates, and ``instance`` is the series' middle slice (what the gate and listings
    #: go by).
    plane = models.JSONField(null=True, blank=True, default=None)
    #: The reading session the annotation was drawn in, if any. A plain integer here so that
    #: ``annotations`` never imports ``collab``; collab owns what the number means.
    session_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    #: A client-chosen id that makes creation idempotent: unique per author when not empty.
    client_ref = models.CharField(max_length=64, blank=True)
    deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["author", "client_ref"], condition=~Q(client_ref=""), name="one_annotation_per_client_ref"
            ),
            models.CheckConstraint(condition=Q(frame__gte=1), name="annotation_frame_from_1"),
            models.CheckConstraint(condition=Q(version__gte=1), name="annotation_version_from_1"),
        ]
        indexes = [models.Index(fields=["project", "instance", "frame"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} v{self.version} on {self.instance_id}/{self.frame}"
