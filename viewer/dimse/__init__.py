"""DIMSE, DICOM's own network protocol, beside DICOMweb: ``rules`` (pure: AE titles, statuses,
identifiers), ``nodes`` (who is calling), ``query`` (C-FIND over QIDO-RS's search, what a retrieve
names, through the gate), ``server`` (the pynetdicom handlers of ``manage.py dicom_listener``)."""
