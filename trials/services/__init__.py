"""The actions layer of trials. Every page, REST view and command goes through it; none writes
through the ORM itself. Each write is ``check`` (look up, authorise, validate; raises a
:class:`DomainError` and writes nothing) then the write in one transaction.

One module a concern, each importing only those above it:

- :mod:`.access`: who reaches what, and the one blinding rule (:func:`visible_reads`)
- :mod:`.setup`: creating a trial, adding subjects, assigning readers (organizers)
- :mod:`.reading`: lesions, assessments and the measurements to choose from (the reader of a draft)
- :mod:`.evaluation`: the RECIST table of a read, and the read as serialised
- :mod:`.signing`: signing, settling a subject, adjudication
- :mod:`.reports`: the worklist and the dashboard (progress, agreement, plots)
- :mod:`.exports`: the CSV and the DICOM SR
"""

from trials.services.access import TrialAccess, access_read, access_subject, access_trial, visible_reads
from trials.services.evaluation import recist_table, recist_timepoints, serialize_read
from trials.services.exports import CSV_COLUMNS, export_csv, export_sr
from trials.services.reading import access_lesion, add_lesion, delete_lesion, set_assessment, update_lesion
from trials.services.reports import dashboard, worklist
from trials.services.setup import add_subject, assign_readers, create_trial, usernames
from trials.services.signing import adjudicate, adjudication_view, disagreements, final_read, sign_read, subject_state

__all__ = [
    "CSV_COLUMNS", "TrialAccess", "access_lesion", "access_read", "access_subject", "access_trial", "add_lesion",
    "add_subject", "adjudicate", "adjudication_view", "assign_readers", "create_trial", "dashboard",
    "delete_lesion", "disagreements", "export_csv", "export_sr", "final_read", "recist_table", "recist_timepoints",
    "serialize_read", "set_assessment", "sign_read", "subject_state", "update_lesion", "usernames",
    "visible_reads", "worklist",
]
