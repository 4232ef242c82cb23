"""QIDO-RS search (PS3.18 10.6): query parameters → ORM filters → DICOM JSON results.

Matching follows PS3.4 C.2.2.2: single value, list of UIDs, wildcard (``*``, ``?``), range
(dates), and universal (empty) matching. Person names match case-insensitively, as most archives do.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

import pydicom
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.lookups import IStartsWith, PatternLookup, StartsWith
from django.http import QueryDict

from crossread.conf import option
from crossread.errors import BadRequest
from crossread.compiled import CompiledQueries
from viewer.access import ProjectAccess
from viewer.dicomfile import SERIES_LEVEL_TAGS, STUDY_LEVEL_TAGS
from viewer.models import Series

STUDY, SERIES, INSTANCE = "study", "series", "instance"
LEVEL_DEPTH = {STUDY: 0, SERIES: 1, INSTANCE: 2}
#: How to reach a model of each level from a queryset of each level.
PATH = {
    (STUDY, STUDY): "",
    (SERIES, SERIES): "",
    (SERIES, STUDY): "study__",
    (INSTANCE, INSTANCE): "",
    (INSTANCE, SERIES): "series__",
    (INSTANCE, STUDY): "series__study__",
}


@dataclass(frozen=True)
class MatchKey:
    keyword: str
    level: str
    field: str  # the model field on that level's model
    kind: str  # "uid", "text", "pn", "date", "int", "modalities"


MATCH_KEYS = {
    key.keyword: key
    for key in [
        MatchKey("StudyInstanceUID", STUDY, "study_instance_uid", "uid"),
        MatchKey("PatientName", STUDY, "patient_name", "pn"),
        MatchKey("PatientID", STUDY, "patient_id", "text"),
        MatchKey("PatientBirthDate", STUDY, "patient_birth_date", "date"),
        MatchKey("PatientSex", STUDY, "patient_sex", "text"),
        MatchKey("StudyDate", STUDY, "study_date", "date"),
        MatchKey("StudyTime", STUDY, "study_time", "text"),
        MatchKey("AccessionNumber", STUDY, "accession_number", "text"),
        MatchKey("StudyID", STUDY, "study_id", "text"),
        MatchKey("StudyDescription", STUDY, "study_description", "text"),
        MatchKey("ReferringPhysicianName", STUDY, "referring_physician_name", "pn"),
        MatchKey("ModalitiesInStudy", STUDY, "", "modalities"),
        MatchKey("SeriesInstanceUID", SERIES, "series_instance_uid", "uid"),
        MatchKey("Modality", SERIES, "modality", "text"),
        MatchKey("SeriesNumber", SERIES, "series_number", "int"),
        MatchKey("SeriesDescription", SERIES, "series_description", "text"),
        MatchKey("SOPInstanceUID", INSTANCE, "sop_instance_uid", "uid"),
        MatchKey("SOPClassUID", INSTANCE, "sop_class_uid", "uid"),
        MatchKey("InstanceNumber", INSTANCE, "instance_number", "int"),
    ]
}

IGNORED_PARAMETERS = {"fuzzymatching"}
DATE_RE = re.compile(r"^\d{8}$")

#: Bounds on what one query may ask, each a 400 beyond: the values of a list match (UIDs,
#: modalities) and the attributes of ``includefield`` (``all`` names every one), the length of a
#: single matching value (the longest stored value, a person name, is 3 x 64 characters), and
#: ``offset`` (beyond it, a database cannot count).
MAX_LIST_VALUES = 1000
MAX_INCLUDE_FIELDS = 256
MAX_VALUE_CHARS = 256
MAX_OFFSET = 2**31 - 1


def keyword_of(name: str) -> str | None:
    """A query key as a keyword: ``PatientName``, ``00100010`` or ``0010,0010`` all name PatientName."""
    if name in MATCH_KEYS or pydicom.datadict.tag_for_keyword(name) is not None:
        return name
    digits = name.replace(",", "")
    if re.fullmatch(r"[0-9A-Fa-f]{8}", digits):
        keyword = pydicom.datadict.keyword_for_tag(int(digits, 16))
        return keyword or None
    return None


@dataclass
class Query:
    level: str
    filters: list[tuple[MatchKey, str]]
    include: set[str]  # tags (8 hex digits) to return beyond the required ones
    include_all: bool
    limit: int
    offset: int
    warnings: list[str]


def parse_query(params: QueryDict, level: str) -> Query:
    filters: list[tuple[MatchKey, str]] = []
    include: set[str] = set()
    include_all = False
    warnings: list[str] = []
    limit = option("QIDO_DEFAULT_LIMIT")
    offset = 0
    for name in params:
        values = params.getlist(name)
        if name == "limit":
            limit = _non_negative_int(name, values[-1])
            if limit == 0 or limit > option("QIDO_MAX_LIMIT"):
                limit = option("QIDO_MAX_LIMIT")
        elif name == "offset":
            offset = _non_negative_int(name, values[-1])
            if offset > MAX_OFFSET:
                raise BadRequest(f"offset must be at most {MAX_OFFSET}.")
        elif name == "includefield":
            fields = [f for f in (v.strip() for value in values for v in value.split(",")) if f]
            if len(fields) > MAX_INCLUDE_FIELDS:
                raise BadRequest(f"includefield names more than {MAX_INCLUDE_FIELDS} attributes; ask for all.")
            for field in fields:
                if field == "all":
                    include_all = True
                    continue
                keyword = keyword_of(field)
                if keyword is None:
                    raise BadRequest(f"includefield names an unknown attribute: {field[:64]}")
                include.add(_tag_hex(keyword))
        elif name in IGNORED_PARAMETERS:
            warnings.append(f"The {name} parameter is not supported and was ignored.")
        else:
            keyword = keyword_of(name)
            if keyword is None:
                raise BadRequest(f"Unknown query parameter: {name[:64]}")
            key = MATCH_KEYS.get(keyword)
            if key is None or LEVEL_DEPTH[key.level] > LEVEL_DEPTH[level]:
                raise BadRequest(f"{keyword} cannot be used to search at the {level} level.")
            value = ",".join(values) if key.kind in ("uid", "modalities") else values[-1]
            _check_size(key, value)
            filters.append((key, value))
            include.add(_tag_hex(keyword))
    return Query(level, filters, include, include_all, limit, offset, warnings)


def _check_size(key: MatchKey, value: str) -> None:
    if key.kind in ("uid", "modalities"):
        if len(_split_list(value)) > MAX_LIST_VALUES:
            raise BadRequest(f"{key.keyword} lists more than {MAX_LIST_VALUES} values.")
    elif len(value) > MAX_VALUE_CHARS:
        raise BadRequest(f"{key.keyword} is longer than {MAX_VALUE_CHARS} characters.")


def _non_negative_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a non-negative integer.") from None
    if number < 0:
        raise BadRequest(f"{name} must be a non-negative integer.")
    return number


def _tag_hex(keyword: str) -> str:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    assert tag is not None
    return f"{tag:08X}"


def _wildcard_regex(pattern: str) -> str:
    """A regular expression that matches what the wildcard ``pattern`` does (``*``: any run of
    characters, ``?``: any one), in time linear in the value's length.

    The plain translation (``*`` → ``.*``) makes a backtracking engine (SQLite's REGEXP is Python's
    ``re``) try every way to split a value among the stars: ``*a*a*a*a*a*a*a*a*b`` took 90 s against
    one 64-character value. Here a middle segment (text between two stars) is matched at its first
    occurrence, with a run of characters at none of which it starts, which leaves no choice to
    try again; the first occurrence is the right one, as it leaves the most of the value to the
    segments after it. Only lookaheads: PostgreSQL's ``~`` reads it too.
    """
    segments = [_segment_regex(segment) for segment in pattern.split("*")]
    if len(segments) == 1:
        return f"^{segments[0]}$"
    first, *middle, last = segments
    return "^" + first + "".join(f"(?:(?!{m}).)*{m}" for m in middle if m) + f".*{last}$"


def _segment_regex(segment: str) -> str:
    return "".join("." if c == "?" else re.escape(c) for c in segment)


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,\\]", value) if item.strip()]



class Terms(NamedTuple):
    """One matching key's value, checked: the form of its match (part of a search's shape: the SQL
    depends on it) and the values it matches with (parameters of that SQL)."""

    form: tuple[Any, ...]
    values: tuple[Any, ...]


def terms(key: MatchKey, value: str) -> Terms | None:
    """The match of ``value`` for ``key`` (None: universal matching); a 400 for a malformed value."""
    if value == "":
        return None
    if key.kind in ("uid", "modalities"):
        items = _split_list(value)
        return Terms((key.kind, len(items)), tuple(items))
    if key.kind == "date":
        return _date_terms(value)
    if key.kind == "int":
        try:
            return Terms(("exact",), (int(value),))
        except ValueError:
            raise BadRequest(f"{key.keyword} must be an integer.") from None
    if "*" in value or "?" in value:
        # A LIKE, which an index serves up to the first wildcard: all of the common one, a prefix
        # (docs/dicomweb.md, "Search at scale"). SQLite's LIKE ignores case: other keys than names
        # are checked again, case and all.
        if key.kind == "pn":
            return Terms(("ilike",), (like_pattern(value),))
        return Terms(("like",), (like_pattern(value), _wildcard_regex(value)))
    return Terms(("iexact" if key.kind == "pn" else "exact",), (value,))


def condition(key: MatchKey, form: tuple[Any, ...], values: list[Any], prefix: str, series: QuerySet[Series]) -> Q:
    """The filter of a match (:func:`terms`) on a model reached through ``prefix``; ``series``: the
    series the caller may see (ModalitiesInStudy matches on those only). ``values`` are the match's
    values, or stand-ins for them (:mod:`crossread.compiled`): nothing here looks at them."""
    field = prefix + key.field
    kind = form[0]
    if kind == "uid":
        return Q(**{f"{field}__in": values})
    if kind == "modalities":
        study_ref = OuterRef(prefix + "pk" if prefix else "pk")
        return Q(Exists(series.filter(study=study_ref, modality__in=values)))
    if kind == "range":
        _, has_start, has_end = form
        bounds = iter(values)
        q = ~Q(**{field: ""})
        if has_start:
            q &= Q(**{f"{field}__gte": next(bounds)})
        if has_end:
            q &= Q(**{f"{field}__lte": next(bounds)})
        return q
    if kind == "like":
        pattern, regex = values
        return Q(LikePattern(F(field), pattern), **{f"{field}__regex": regex})
    if kind == "ilike":
        return Q(ILikePattern(F(field), values[0]))
    return Q(**{f"{field}__{kind}": values[0]})  # exact (text, dates, numbers), iexact (names)


def like_pattern(value: str) -> str:
    """The ``LIKE`` pattern of a DICOM wildcard match (PS3.4 C.2.2.2.4: ``*`` any characters, ``?``
    one), every other character matching itself (``%``, ``_`` and ``\\`` escaped, as Django does)."""
    escaped = value.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return escaped.replace("*", "%").replace("?", "_")


class _MadePattern:
    """A ``LIKE`` lookup given its whole pattern made beforehand (:func:`like_pattern`), which it
    passes to the database as it is. It is Django's ``startswith`` (``istartswith``) lookup, whose SQL
    is a ``LIKE`` (on PostgreSQL of ``UPPER`` on both sides, which the names' index holds), with the
    pattern's wildcards where the value has them rather than only at its end; and a parameter a
    compiled search can swap for another's (:mod:`crossread.compiled`)."""

    def process_rhs(self, compiler: Any, connection: Any) -> Any:
        return super(PatternLookup, self).process_rhs(compiler, connection)  # type: ignore[misc]


class LikePattern(_MadePattern, StartsWith):
    pass


class ILikePattern(_MadePattern, IStartsWith):
    pass


def _date_terms(value: str) -> Terms:
    value = value.strip()
    if "-" not in value:
        _check_date(value)
        return Terms(("exact",), (value,))
    start, _, end = value.partition("-")
    start, end = start.strip(), end.strip()
    if not start and not end:
        raise BadRequest("A date range needs a start or an end (YYYYMMDD-YYYYMMDD).")
    for bound in (start, end):
        if bound:
            _check_date(bound)
    return Terms(("range", bool(start), bool(end)), tuple(bound for bound in (start, end) if bound))


def _check_date(value: str) -> None:
    if not DATE_RE.match(value):
        raise BadRequest("Dates must be YYYYMMDD, and ranges YYYYMMDD-YYYYMMDD.")


# --------------------------------------------------------------------------- searching



#: Beyond a full page, a search counts at most this many more matches for its ``Warning``: counting
#: every match of a broad search (all studies of a large archive) would cost more than the page.
COUNTED_BEYOND = 1000

#: The SQL of each shape of search, compiled once (:mod:`crossread.compiled`).
COMPILED = CompiledQueries()


@dataclass(frozen=True)
class Found:
    """A page of rows, and how many more match: exactly, or (``more_than``) at least that many."""

    rows: list[Any]
    remaining: int
    more_than: bool = False


def search(access: ProjectAccess, query: Query, scope: dict[str, str]) -> Found:
    """Rows of ``query.level`` within ``scope`` (e.g. ``{"study": uid}``) that the member behind
    ``access`` may see, and how many more match. The rows come from the gate: a study or series whose
    every instance is held in quarantine is not found by a reader.

    Each query is compiled once per shape (:data:`COMPILED`): the shape names the level, the keys of
    the URL's scope, each matching key with the form of its match, the page, the columns, and the
    gate's own key (:meth:`ProjectAccess.rows_key`); the values are those of the scope and matches."""
    matches = [(key, found) for key, value in query.filters if (found := terms(key, value)) is not None]
    scoped = [(level, field) for level, field in SCOPE_FIELDS if level in scope]
    values = [scope[level] for level, _ in scoped] + [value for _, match in matches for value in match.values]
    unlisted = access.unlisted() if "study" not in scope else frozenset()  # a blinded reader's hidden studies

    def matching(values: Any) -> QuerySet[Any]:
        """The level's rows the member may see that match (from the values, or stand-ins for them)."""
        given = iter(values)
        qs: QuerySet[Any] = {STUDY: access.studies, SERIES: access.series, INSTANCE: access.instances}[query.level]()
        # A UID of the URL is matched with its project, which the UID's unique (project, UID) index needs.
        for level, field in scoped:
            prefix = PATH[(query.level, level)]
            qs = qs.filter(**{prefix + field: next(given), prefix + "project": access.project})
        if unlisted:
            qs = qs.exclude(**{PATH[(query.level, STUDY)] + "pk__in": unlisted})
        series = access.series() if any(key.kind == "modalities" for key, _ in matches) else None
        for key, match in matches:
            taken = [next(given) for _ in match.values]
            qs = qs.filter(condition(key, match.form, taken, PATH[(query.level, key.level)], series))  # type: ignore[arg-type]
        return qs

    end = query.offset + query.limit
    shape = (
        query.level, tuple(level for level, _ in scoped), tuple((key.keyword, match.form) for key, match in matches),
        query.offset, end, access.rows_key(),
    )
    if query.level == STUDY:
        rows: list[Any] = _study_page(access, query, shape, matching, values, end)
    else:
        columns, row_type = _columns(query)
        page = matching if query.level == INSTANCE else (
            lambda values: matching(values).annotate(instance_count=_visible_instances(access))
        )
        found = COMPILED.rows(
            (*shape, columns),
            lambda values: page(values).order_by("pk").values_list(*columns)[query.offset : end],
            values,
        )
        rows = [row_type(*row) for row in found]
    if len(rows) < query.limit and (rows or query.offset == 0):
        return Found(rows, 0)  # the last page: nothing to count
    # Counted up to a bound: the rows a bounded count reads are those of the page and as many more.
    counted = matching(values).order_by()[: end + COUNTED_BEYOND].count()
    remaining = max(0, counted - query.offset - len(rows))
    return Found(rows, remaining, more_than=counted == end + COUNTED_BEYOND)


#: The model field of each level of a URL's scope (``studies/{study}/series/{series}``).
SCOPE_FIELDS = ((STUDY, "study_instance_uid"), (SERIES, "series_instance_uid"))


class SeriesRow(NamedTuple):
    """A series of a page (:data:`SERIES_COLUMNS`), with the instances the member may see in it."""

    study_id: int
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    series_description: str
    series_number: int | None
    metadata: dict[str, Any]
    instance_count: int | None
    study_metadata: dict[str, Any] | None = None  # read only when a search names attributes


class InstanceRow(NamedTuple):
    """An instance of a page (:data:`INSTANCE_COLUMNS`)."""

    study_id: int
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    instance_number: int | None
    number_of_frames: int | None
    rows: int | None
    columns: int | None
    bits_allocated: int | None
    # Read only when a search asks for attributes beyond the required ones:
    metadata: dict[str, Any] | None = None
    series_metadata: dict[str, Any] | None = None
    study_metadata: dict[str, Any] | None = None


SERIES_COLUMNS = (
    "study_id", "study__study_instance_uid", "series_instance_uid", "modality", "series_description",
    "series_number", "metadata", "instance_count",
)
INSTANCE_COLUMNS = (
    "series__study_id", "series__study__study_instance_uid", "series__series_instance_uid", "sop_class_uid",
    "sop_instance_uid", "instance_number", "number_of_frames", "rows", "columns", "bits_allocated",
)

#: The attributes of an instance's result that come from its columns (:func:`instance_results`).
INSTANCE_REQUIRED_TAGS = frozenset({
    "00080016", "00080018", "00080056", "00081190", "0020000D", "0020000E", "00200013", "00280008",
    "00280010", "00280011", "00280100",
})


def _columns(query: Query) -> tuple[tuple[str, ...], Any]:
    """The columns a page of series or instances is read from, and its row type: the stored DICOM
    JSON of each level only when ``includefield`` asks for attributes beyond the columns."""
    named = bool(query.include - INSTANCE_REQUIRED_TAGS) if query.level == INSTANCE else bool(query.include)
    if query.level == SERIES:
        return SERIES_COLUMNS + (("study__metadata",) if named else ()), SeriesRow
    metadata: tuple[str, ...] = ()
    if named:
        metadata = ("metadata", "series__metadata", "series__study__metadata")
    elif query.include_all:
        metadata = ("metadata",)
    return INSTANCE_COLUMNS + metadata, InstanceRow


#: The columns of a study a study-level result is built from (:func:`study_json`), in this order.
STUDY_COLUMNS = (
    "pk", "study_instance_uid", "patient_name", "patient_id", "patient_birth_date", "patient_sex", "study_date",
    "study_time", "accession_number", "study_id", "study_description", "referring_physician_name",
)


class StudyRow(NamedTuple):
    """A study of a page: its :data:`STUDY_COLUMNS`, its stored DICOM JSON (only when a search asks
    beyond the columns), and its series, instances and modalities that the member may see."""

    columns: tuple[Any, ...]
    metadata: dict[str, Any] | None
    series_count: int
    instance_count: int
    modalities: list[str]

    @property
    def pk(self) -> int:
        return self.columns[0]

    @property
    def study_instance_uid(self) -> str:
        return self.columns[1]


def _study_page(
    access: ProjectAccess, query: Query, shape: tuple[Any, ...], matching: Any, values: list[Any], end: int
) -> list[StudyRow]:
    """The page of studies as plain values (not model objects: a page of 1,000 is built in a few ms),
    each with what the member may see of its series (:func:`_study_summaries`). The stored metadata
    is read only when ``includefield`` asks beyond the columns."""
    with_metadata = _needs_metadata(query)
    columns = STUDY_COLUMNS + (("metadata",) if with_metadata else ())
    rows = COMPILED.rows(
        (*shape, columns),
        lambda values: matching(values).order_by("pk").values_list(*columns)[query.offset : end],
        values,
    )
    if not rows:
        return []
    summaries = _study_summaries(access, [row[0] for row in rows])
    count = len(STUDY_COLUMNS)
    return [
        StudyRow(row[:count], row[count] if with_metadata else None, *summaries.get(row[0], (0, 0, [])))
        for row in rows
    ]


#: The tags a study's result takes from the study's columns (and counts), whatever its metadata says.
STUDY_COLUMN_TAGS = frozenset({
    "00080020", "00080030", "00080050", "00080056", "00080061", "00080090", "00081030", "00081190",
    "00100010", "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206", "00201208",
})


def _needs_metadata(query: Query) -> bool:
    """Does a study's result need its stored DICOM JSON, beyond its columns?"""
    return query.include_all or not query.include <= STUDY_COLUMN_TAGS


# --------------------------------------------------------------------------- results as DICOM JSON


def _element(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _one(vr: str, value: Any) -> dict[str, Any]:
    """:func:`_element` of one value (the common case, made often: a page of results)."""
    return {"vr": vr} if value is None or value == "" else {"vr": vr, "Value": [value]}


def _pn(value: str) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": value}]} if value else {"vr": "PN"}


def study_results(rows: list[StudyRow], query: Query, base_url: str, access: ProjectAccess) -> list[dict[str, Any]]:
    """DICOM JSON of a page of studies (:func:`_study_page`), with their stored metadata only for what
    ``includefield`` asks beyond the columns."""
    extra = _needs_metadata(query)
    results = []
    for row in rows:
        result = study_json(row, base_url)
        if extra:
            result = _merge(result, _optional(row.metadata or {}, query, STUDY_LEVEL_TAGS))
        results.append(access.masked(result, row.pk))
    return results


def _study_summaries(access: ProjectAccess, study_ids: list[int]) -> dict[int, tuple[int, int, list[str]]]:
    """``study id -> (series, instances, modalities)`` that the member may see, for these studies.
    One query: their series, each with the instances the member may reach in it counted in a
    subquery the instances' (project, series, quarantined) index holds all of. (The ids are sent as
    a list: given the page as a subquery, PostgreSQL read every series of the project.)"""
    series = COMPILED.rows(
        ("study summaries", len(study_ids), access.rows_key()),
        lambda ids: (
            access.series().filter(study_id__in=ids).order_by()
            .annotate(n=_visible_instances(access)).values_list("study_id", "modality", "n")
        ),
        study_ids,
    )
    series_counts: dict[int, int] = defaultdict(int)
    instance_counts: dict[int, int] = defaultdict(int)
    modalities: dict[int, set[str]] = defaultdict(set)
    for study_id, modality, count in series:
        series_counts[study_id] += 1
        instance_counts[study_id] += count or 0
        if modality:
            modalities[study_id].add(modality)
    return {pk: (n, instance_counts[pk], sorted(modalities[pk])) for pk, n in series_counts.items()}


def study_json(row: StudyRow, base_url: str) -> dict[str, Any]:
    """A study's result from its row, its attributes in tag order."""
    (_pk, uid, patient_name, patient_id, birth_date, sex, date, time, accession, study_id, description,
     referring) = row.columns
    modalities = row.modalities
    return {
        "00080020": _one("DA", date),
        "00080030": _one("TM", time),
        "00080050": _one("SH", accession),
        "00080056": {"vr": "CS", "Value": ["ONLINE"]},
        "00080061": {"vr": "CS", "Value": modalities} if modalities else {"vr": "CS"},
        "00080090": _pn(referring),
        "00081030": _one("LO", description),
        "00081190": {"vr": "UR", "Value": [f"{base_url}/studies/{uid}"]},
        "00100010": _pn(patient_name),
        "00100020": _one("LO", patient_id),
        "00100030": _one("DA", birth_date),
        "00100040": _one("CS", sex),
        "0020000D": _one("UI", uid),
        "00200010": _one("SH", study_id),
        "00201206": {"vr": "IS", "Value": [row.series_count]},
        "00201208": {"vr": "IS", "Value": [row.instance_count]},
    }


def _visible_instances(access: ProjectAccess) -> Subquery:
    """Per series of a page, in the page's query: the instances the member may reach in it (a
    subquery the instances' (project, series, quarantined) index holds all of)."""
    counts = access.instances().filter(series=OuterRef("pk")).order_by().values("series").annotate(n=Count("*"))
    return Subquery(counts.values("n"))


def series_results(rows: list[SeriesRow], query: Query, base_url: str, access: ProjectAccess) -> list[dict[str, Any]]:
    """DICOM JSON of a page of series (:func:`search`)."""
    results = []
    for series in rows:
        study_uid = series.study_instance_uid
        results.append(access.masked(
            _merge(
                {
                    "00080060": _element("CS", series.modality),
                    "0008103E": _element("LO", series.series_description),
                    "00081190": _element("UR", f"{base_url}/studies/{study_uid}/series/{series.series_instance_uid}"),
                    "0020000D": _element("UI", study_uid),
                    "0020000E": _element("UI", series.series_instance_uid),
                    "00200011": _element("IS", series.series_number),
                    "00201209": _element("IS", series.instance_count or 0),
                },
                _pick(series.metadata, ("00400244", "00400245")),
                _optional(series.metadata, query, SERIES_LEVEL_TAGS),
                _optional(series.study_metadata or {}, query, STUDY_LEVEL_TAGS, include_all=False),
            ), series.study_id)
        )
    return results


def instance_results(rows: list[InstanceRow], query: Query, base_url: str, access: ProjectAccess) -> list[dict[str, Any]]:
    """DICOM JSON of a page of instances (:func:`search`)."""
    results = []
    for instance in rows:
        study_uid, series_uid = instance.study_instance_uid, instance.series_instance_uid
        url = f"{base_url}/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}"
        required = {
            "00080016": _element("UI", instance.sop_class_uid),
            "00080018": _element("UI", instance.sop_instance_uid),
            "00080056": _element("CS", "ONLINE"),
            "00081190": _element("UR", url),
            "0020000D": _element("UI", study_uid),
            "0020000E": _element("UI", series_uid),
            "00200013": _element("IS", instance.instance_number),
            "00280008": _element("IS", instance.number_of_frames),
            "00280010": _element("US", instance.rows),
            "00280011": _element("US", instance.columns),
            "00280100": _element("US", instance.bits_allocated),
        }
        results.append(access.masked(
            _merge(
                required,
                _without_bulk(_optional(instance.metadata or {}, query, None)),
                _optional(instance.series_metadata or {}, query, SERIES_LEVEL_TAGS, include_all=False),
                _optional(instance.study_metadata or {}, query, STUDY_LEVEL_TAGS, include_all=False),
            ), instance.study_id)
        )
    return results


def _optional(
    metadata: dict[str, Any], query: Query, level_tags: frozenset[str] | None, *, include_all: bool = True
) -> dict[str, Any]:
    if query.include_all and include_all:
        return dict(metadata) if level_tags is None else {t: v for t, v in metadata.items() if t in level_tags}
    return {tag: metadata[tag] for tag in query.include if tag in metadata}


def _pick(metadata: dict[str, Any], tags: tuple[str, ...]) -> dict[str, Any]:
    return {tag: metadata[tag] for tag in tags if tag in metadata}


def _without_bulk(metadata: dict[str, Any]) -> dict[str, Any]:
    return {tag: value for tag, value in metadata.items() if "BulkDataURI" not in value}


def _merge(required: dict[str, Any], *extras: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for extra in reversed(extras):
        merged.update(extra)
    merged.update(required)  # the index is authoritative for required attributes
    return dict(sorted(merged.items()))
