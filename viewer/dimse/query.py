"""C-FIND, C-GET and C-MOVE over the archive: the QIDO-RS search through the gate, and the instances
a retrieve names, for a node's :class:`~viewer.access.ProjectAccess`.

C-FIND is QIDO-RS: the identifier becomes QIDO-RS parameters (:func:`viewer.dimse.rules.find_request`),
parsed, bounded and searched by :mod:`viewer.dicomweb.qido` exactly as over HTTP, and its DICOM JSON
results become the answers (:func:`viewer.dimse.rules.find_response`). A matching key QIDO-RS has no
column for is matched on the results' stored values (:func:`viewer.dimse.rules.stored_match`): all
of the search's matches are in hand (beyond ``DIMSE_MAX_MATCHES`` it is refused anyway), so keeping
those whose value matches answers it rightly.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from django.http import QueryDict
from pydicom import dcmread
from pydicom.dataset import Dataset

from crossread.conf import option
from crossread.errors import DomainError
from viewer.access import ProjectAccess
from viewer.dicomweb import qido
from viewer.dimse import rules
from viewer.models import Instance
from viewer.storage import object_store

#: The QIDO-RS search and result function of each level.
RESULTS = {qido.STUDY: qido.study_results, qido.SERIES: qido.series_results, qido.INSTANCE: qido.instance_results}


def max_matches() -> int:
    return min(int(option("DIMSE_MAX_MATCHES")), int(option("QIDO_MAX_LIMIT")))


def find(access: ProjectAccess, request: rules.FindRequest, *, ae_title: str) -> list[Dataset]:
    """The C-FIND answers for ``request``; :class:`~viewer.dimse.rules.IdentifierError` when it cannot
    be answered (a key QIDO-RS refuses: "identifier does not match SOP class"; more matches than
    ``DIMSE_MAX_MATCHES``: "out of resources")."""
    params = QueryDict(mutable=True)
    stored: list[rules.StoredMatch] = []
    for keyword, value in request.matching:
        if request.patients and keyword not in rules.PATIENT_LEVEL_KEYWORDS:
            raise rules.IdentifierError(f"{keyword} is not a key of the PATIENT level.")
        key = qido.MATCH_KEYS.get(keyword)
        if key is None:
            # A key the index has no column for: matched below on each result's stored value.
            match = rules.stored_match(keyword, value, request)
            if match is not None:
                stored.append(match)
            continue
        params.appendlist(keyword, value)
    include = rules.qido_include(request)
    if include:
        params.appendlist("includefield", ",".join(include))
    limit = max_matches()
    params["limit"] = str(limit)
    try:
        query = qido.parse_query(params, request.level)
        found = qido.search(access, query, {})
    except DomainError as exc:
        raise rules.IdentifierError(exc.detail) from None
    rows = found.rows
    if found.remaining > 0:  # more match than one answer may hold
        raise rules.IdentifierError(f"More than {limit} matches; narrow the query.", rules.QR_OUT_OF_RESOURCES)
    base_url = f"{option('PUBLIC_URL').rstrip('/')}/projects/{access.project.slug}/dicomweb"
    results = RESULTS[request.level](rows, query, base_url, access)
    if stored:
        results = [r for r in results if all(rules.stored_matches(m, r.get(m.tag)) for m in stored)]
    if request.patients:
        results = rules.patient_results(results)
    return [rules.find_response(result, request, retrieve_ae_title=ae_title) for result in results]


def instances_to_retrieve(access: ProjectAccess, request: rules.RetrieveRequest) -> list[Instance]:
    """The instances a C-GET or C-MOVE names that the node may reach, in series and instance order;
    "out of resources" beyond ``DIMSE_MAX_MATCHES``."""
    queryset = access.instances()
    if request.patient_ids:
        queryset = queryset.filter(series__study__patient_id__in=request.patient_ids)
    if request.study_uids:
        queryset = queryset.filter(series__study__study_instance_uid__in=request.study_uids)
    if request.series_uids:
        queryset = queryset.filter(series__series_instance_uid__in=request.series_uids)
    if request.sop_uids:
        queryset = queryset.filter(sop_instance_uid__in=request.sop_uids)
    limit = max_matches()
    found = list(queryset.select_related("series__study").order_by("series_id", "instance_number", "pk")[: limit + 1])
    if len(found) > limit:
        raise rules.IdentifierError(f"More than {limit} instances; retrieve less at once.",
                                    rules.RETRIEVE_OUT_OF_RESOURCES_MATCHES)
    return found


def stored_datasets(access: ProjectAccess, instances: list[Instance]) -> Iterator[Dataset]:
    """Each instance's stored file, read one at a time as it is sent."""
    store = object_store()
    for instance in instances:
        yield dcmread(io.BytesIO(store.read(access.project.pk, instance.sha256)))
