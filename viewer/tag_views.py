"""The DICOM tag browser's endpoint: one instance's elements, named and bounded (:mod:`viewer.tags`).

``GET /projects/<slug>/instances/<SOPInstanceUID>/tags`` → ``{"instance", "study", "series",
"elements": [...], "omitted", "limits"}``. Through the gate (an instance in quarantine, or of a study
hidden from the member, is "not found" as an unknown one), and from the same DICOM JSON that WADO-RS
metadata answers, masked the same way for a blinded reader (:meth:`ProjectAccess.masked`): no names,
dates or private elements of a study read blinded. Bulk data are links to WADO-RS ``bulkdata``.
"""

from __future__ import annotations

from urllib.parse import quote

from django.http import HttpRequest, HttpResponse, JsonResponse

from viewer import tags
from viewer.access import ProjectAccess
from viewer.http import project_endpoint


@project_endpoint(("GET",))
def instance_tags(request: HttpRequest, access: ProjectAccess, sop: str) -> HttpResponse:
    found = access.instance(sop)
    series = found.series
    study_uid, series_uid = series.study.study_instance_uid, series.series_instance_uid
    url = (f"/projects/{quote(access.project.slug)}/dicomweb/studies/{quote(study_uid)}/series/{quote(series_uid)}"
           f"/instances/{quote(found.sop_instance_uid)}")
    tree = tags.tag_tree(access.masked(found.metadata, series.study_id), url)
    response = JsonResponse({"instance": found.sop_instance_uid, "study": study_uid, "series": series_uid, **tree})
    response["Cache-Control"] = "private, no-store"
    return response
