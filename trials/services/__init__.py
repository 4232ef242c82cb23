"""The actions layer of trials. Every page, REST view and command goes through it; none writes
through the ORM itself. Each write is ``check`` (look up, authorise, validate; raises a
:class:`DomainError` and writes nothing) then the write in one transaction.

One module a concern, each importing only those above it (an import contract in pyproject.toml):

- :mod:`.access`: who reaches what (the facts for :mod:`trials.rules`), and the blinding rule as a queryset
  (:func:`visible_reads`)
- :mod:`.setup`: creating a trial, adding subjects, assigning readers (organizers)
- :mod:`.reading`: lesions, assessments and the measurements to choose from (the reader of a draft)
- :mod:`.evaluation`: the RECIST table of a read, and the read as serialised
- :mod:`.signing`: signing, settling a subject, adjudication
- :mod:`.reports`: the worklist and the dashboard (progress, agreement, plots)
- :mod:`.exports`: the CSV and the DICOM SR

The views (``trials.api``, ``trials.pages``) import from these modules. Re-exported here are only the
calls the demo command and the tests make through ``trials.services``.
"""

from trials.services.access import TrialAccess, access_trial, visible_reads
from trials.services.evaluation import recist_table
from trials.services.exports import CSV_COLUMNS
from trials.services.reading import add_lesion, set_assessment
from trials.services.reports import worklist
from trials.services.setup import add_subject, assign_readers, create_trial
from trials.services.signing import adjudicate, disagreements, sign_read, subject_state

__all__ = [
    "CSV_COLUMNS", "TrialAccess", "access_trial", "add_lesion", "add_subject", "adjudicate", "assign_readers",
    "create_trial", "disagreements", "recist_table", "set_assessment", "sign_read", "subject_state",
    "visible_reads", "worklist",
]
