"""DICOM de-identification (PS3.15 Annex E), a plain package with no Django import.

Use :func:`deidentify` with a :class:`Profile`::

    from viewer.deid import Profile, deidentify

    profile = Profile.from_json({"profile": "basic", "options": ["retain-patient-characteristics"]})
    result = deidentify(dataset, profile, secret=project_secret)
    result.dataset, result.uid_map, result.burned_in_text_risk

See ``docs/deidentification.md`` for the rules.
"""

from viewer.deid.core import DeidResult, deidentify
from viewer.deid.profile import Option, Profile
from viewer.deid.pseudonyms import default_pseudonym
from viewer.deid.table import EDITION
from viewer.deid.uids import new_uid

__all__ = ["EDITION", "DeidResult", "Option", "Profile", "default_pseudonym", "deidentify", "new_uid"]
