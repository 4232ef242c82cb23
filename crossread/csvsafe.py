"""CSV that a spreadsheet opens as data, never as formulas (CSV injection). Pure: no Django, no app.

Every CSV the application writes goes through :func:`writer` or :class:`DictWriter`. A text cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read by Excel,
LibreOffice or Google Sheets as a formula (``=HYPERLINK(...)``, ``@SUM(...)``, DDE ``=cmd|...``);
such a cell gets a leading ``'`` (OWASP's advice), which spreadsheets show as text and a reader of
the file can strip.

Only ``str`` values are changed. Numbers written by the server (``int``, ``float``, ``Decimal``:
``-27.7`` in a change-from-baseline column) stay numbers, so callers pass numbers as numbers and
text as text. A text cell that merely looks like a negative number (a subject labelled ``-1``) is
still text and is prefixed: what a user typed is never trusted to be a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

#: What a spreadsheet may read as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value``, with a ``'`` in front when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Writer:
    """``csv.writer`` whose rows have every text cell neutralised."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @property
    def dialect(self) -> Any:
        return self._inner.dialect

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._inner.writerow([neutralise(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(stream: Any, **kwargs: Any) -> _Writer:
    """Like :func:`csv.writer`, neutralising every text cell."""
    return _Writer(csv.writer(stream, **kwargs))


class DictWriter(csv.DictWriter):  # type: ignore[type-arg]
    """Like :class:`csv.DictWriter`, neutralising every text cell (the header too)."""

    def __init__(self, stream: Any, fieldnames: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(stream, fieldnames, *args, **kwargs)
        self.writer = _Writer(self.writer)
