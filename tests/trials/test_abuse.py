"""Trials against abuse (issue 13): hostile labels in the dashboard's SVG, formulas in the CSV export,
and an audit entry for every legally meaningful act of a trial."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from audit.models import AuditEvent
from trials import plots, services
from trials.models import Subject

pytestmark = pytest.mark.django_db

API = "/api/trials/trial/"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ['x" onmouseover="alert(1)', "<script>alert(1)</script>", "a'b&c>\x01"]


def _sign_both(trial: Any, *, disagree: bool) -> tuple[Any, Any]:
    first = trial.do_read(trial.reader1)
    second = trial.do_read(trial.reader2, new_lesion=not disagree)
    for user, read in ((trial.reader1, first), (trial.reader2, second)):
        assert trial.client(user).post(f"{API}reads/{read.pk}/sign/").status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    return first, second


# --------------------------------------------------------------------------------- SVG injection


def _labels_only_as_text(svg: str, label: str) -> None:
    """The SVG parses as XML; the label is an attribute value or text, never markup or an attribute name."""
    root = ET.fromstring(svg)
    elements = list(root.iter())
    assert {e.tag.removeprefix(SVG) for e in elements} <= {"svg", "line", "text", "rect", "title", "polyline", "circle"}
    allowed = {"xmlns", "class", "viewBox", "role", "aria-label", "data-subject", "x", "y", "x1", "x2", "y1", "y2",
               "width", "height", "fill", "stroke", "stroke-width", "stroke-dasharray", "font-size", "text-anchor",
               "points", "cx", "cy", "r"}
    assert {name for e in elements for name in e.attrib} <= allowed
    shown = label.replace("\x01", "\ufffd")
    assert {e.get("data-subject") for e in elements if e.get("data-subject")} == {shown}
    assert any(shown in (e.text or "") for e in elements if e.tag == SVG + "title")


def test_plots_keep_hostile_labels_as_text() -> None:
    for label in HOSTILE:
        _labels_only_as_text(plots.waterfall_svg([plots.WaterfallBar(label, -27.7, "PD")]), label)
        _labels_only_as_text(plots.spider_svg([plots.SpiderLine(label, [(0, 0.0), (56, -27.7)], "PD")]), label)


def test_the_dashboard_page_draws_a_hostile_label_as_text(trial: Any) -> None:
    label = HOSTILE[0]
    Subject.objects.filter(trial__project=trial.project).update(label=label)
    _sign_both(trial, disagree=False)
    client = trial.client(trial.organizer)
    client.force_login(trial.organizer)
    page = client.get("/projects/trial/trial/dashboard/")
    assert page.status_code == 200
    svgs = re.findall(r"<svg .*?</svg>", page.content.decode(), flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        _labels_only_as_text(svg, label)
