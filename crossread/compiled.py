"""Queries compiled to SQL once per shape, run again with each request's values.

Building and compiling a Django queryset costs about a millisecond (a search of the archive: the
gate's conditions, the joins of its levels, a dozen columns), while the database answers an indexed
lookup in a tenth of that. The SQL of a search depends only on its *shape* (which keys, how many
UIDs in a list, the page, who asks), not on the values searched for, so :class:`CompiledQueries`
compiles each shape once and keeps its SQL, as a prepared statement would.

The caller names the shape (a hashable key: everything the SQL text depends on) and gives the
values, and a function that builds the queryset (a ``values_list`` one) from values. The first time a
shape is seen, the queryset is built from stand-ins for the values (markers: unique strings and
integers) and compiled, and the plan records which parameter of the SQL is which value. Django passes
a plain value to the database untouched (an exact match, a list of UIDs, a range); where it changes
one (escaping a ``LIKE`` pattern, turning a number into text), the marker is no longer found among
the parameters, or is found inside another: that shape is never planned and is built and compiled
each time as usual. So a plan only ever swaps a value for another where Django would have passed
either one as it is.

The plans are bounded (least recently used go first) and shared by the process's threads.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet, ValidationError
from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ValuesListIterable

#: Markers stand for values while a shape is compiled: text no value contains, numbers no id reaches.
_TEXT_MARK = "\x00crossread-value-"
_NUMBER_BASE = 7_331_000_000_000_000_000
_numbers = itertools.count()


@dataclass(frozen=True)
class Plan:
    """The SQL of a shape; per parameter, the index of the value it takes, or None for a constant."""

    using: str
    sql: str
    slots: tuple[int | None, ...]
    constants: tuple[Any, ...]
    converters: tuple[tuple[int, tuple[list[Callable[..., Any]], Any]], ...]

    def rows(self, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        params = [const if slot is None else values[slot] for slot, const in zip(self.slots, self.constants)]
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        if not self.converters:
            return [tuple(row) for row in fetched]
        converted = []
        for row in fetched:  # as Django's SQLCompiler.apply_converters
            values_of_row = list(row)
            for position, (functions, expression) in self.converters:
                value = values_of_row[position]
                for function in functions:
                    value = function(value, expression, connection)
                values_of_row[position] = value
            converted.append(tuple(values_of_row))
        return converted


#: A shape whose SQL cannot be planned (a value Django changes on its way): built each time.
UNPLANNED = object()


class CompiledQueries:
    """Plans by shape, at most ``size`` of them."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._plans: OrderedDict[Hashable, Plan | object] = OrderedDict()
        self._lock = threading.Lock()

    def rows(
        self, shape: Hashable, build: Callable[[Sequence[Any]], QuerySet[Any]], values: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """The rows of ``build(values)`` (a ``values_list`` queryset), from the plan of ``shape``.

        ``shape`` must name everything the SQL depends on other than ``values``: ``build`` is called
        with other values (markers) than those it is run with."""
        with self._lock:
            plan = self._plans.get(shape)
            if plan is not None:
                self._plans.move_to_end(shape)
        if plan is None:
            plan = make_plan(build, values)
            with self._lock:
                self._plans[shape] = plan
                while len(self._plans) > self.size:
                    self._plans.popitem(last=False)
        if isinstance(plan, Plan):
            return plan.rows(values)
        return list(build(values))

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()

    def __len__(self) -> int:
        return len(self._plans)


def make_plan(build: Callable[[Sequence[Any]], QuerySet[Any]], values: Sequence[Any]) -> Plan | object:
    """The plan of ``build`` over values like ``values``, or :data:`UNPLANNED`."""
    markers = [_marker(value) for value in values]
    if any(marker is None for marker in markers):
        return UNPLANNED
    try:
        queryset = build(markers)
        compiler = queryset.query.get_compiler(queryset.db)
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet, ValueError, TypeError, ValidationError):
        return UNPLANNED  # (a stand-in Django would not take where the value it stands for may do)
    if queryset._iterable_class is not ValuesListIterable:
        raise TypeError("CompiledQueries plans values_list() querysets")
    position = {id(marker): index for index, marker in enumerate(markers)}
    slots: list[int | None] = []
    constants: list[Any] = []
    for param in params:
        index = position.get(id(param))
        if index is not None and param is markers[index]:
            slots.append(index)
            constants.append(None)
        elif _derived(param):  # a value Django changed on its way (escaped, converted)
            return UNPLANNED
        else:
            slots.append(None)
            constants.append(param)
    if {slot for slot in slots if slot is not None} != set(range(len(markers))):
        return UNPLANNED  # a value that is not a parameter as it is
    if _TEXT_MARK in sql or any(str(m) in sql for m in markers if isinstance(m, int)):
        return UNPLANNED  # a value written into the SQL text
    fields = [column[0] for column in compiler.select[: compiler.col_count]]
    if compiler.has_composite_fields(fields):
        return UNPLANNED
    converters = compiler.get_converters(fields)
    return Plan(queryset.db, sql, tuple(slots), tuple(constants), tuple(converters.items()))


def _marker(value: Any) -> Any:
    """A stand-in for ``value``: a new object of the same type that no real value equals."""
    if type(value) is str:
        return f"{_TEXT_MARK}{next(_numbers)}\x00"
    if type(value) is int:
        return _NUMBER_BASE + next(_numbers)  # a new int object (beyond the small ints Python shares)
    return None


def _derived(param: Any) -> bool:
    if isinstance(param, str):
        return _TEXT_MARK in param
    if isinstance(param, int) and not isinstance(param, bool):
        return _NUMBER_BASE <= abs(param) < _NUMBER_BASE + 10**15
    return isinstance(param, (list, tuple, set, frozenset, bytes))
