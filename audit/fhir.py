"""Audit events as FHIR R4 AuditEvent resources (http://hl7.org/fhir/R4/auditevent.html). No Django.

Event types come from the DICOM audit codes (DCM, the AuditEventID value set FHIR binds ``type``
to) and HL7's audit-event-type code system for REST operations; subtypes, actions and outcomes from
their FHIR value sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
NETWORK_TYPE_IP = "2"

#: action → (type system, type code, type display, subtype (code, display) or None, FHIR action C/R/U/D/E)
MAPPING: dict[str, tuple[str, str, str, tuple[str, str] | None, str]] = {
    "login": (DCM, "110114", "User Authentication", ("110122", "Login"), "E"),
    "login.failed": (DCM, "110114", "User Authentication", ("110122", "Login"), "E"),
    "logout": (DCM, "110114", "User Authentication", ("110123", "Logout"), "E"),
    "study.opened": (DCM, "110103", "DICOM Instances Accessed", None, "R"),
    "series.viewed": (DCM, "110103", "DICOM Instances Accessed", None, "R"),
    "download": (DCM, "110106", "Export", None, "R"),
    "export": (DCM, "110106", "Export", None, "R"),
    "upload": (DCM, "110107", "Import", None, "C"),
    "deidentification.applied": (DCM, "110107", "Import", None, "U"),
    "annotation.created": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "C"),
    "annotation.changed": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "U"),
    "annotation.deleted": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "D"),
    "membership.changed": (DCM, "110136", "Security Roles Changed", None, "U"),
    "session.joined": (DCM, "110100", "Application Activity", None, "E"),
    "session.left": (DCM, "110100", "Application Activity", None, "E"),
    "session.call.joined": (DCM, "110100", "Application Activity", None, "E"),
    "session.call.left": (DCM, "110100", "Application Activity", None, "E"),
    "session.created": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "C"),
    "session.changed": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "U"),
    "session.closed": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "U"),
    "session.seated": (DCM, "110136", "Security Roles Changed", None, "U"),
    "session.unseated": (DCM, "110136", "Security Roles Changed", None, "U"),
    "session.invitation.created": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "C"),
    "session.invitation.revoked": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "U"),
    "session.invitation.accepted": (DCM, "110136", "Security Roles Changed", None, "U"),
    "quarantine.decision": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "U"),
    "access.denied": (DCM, "110113", "Security Alert", None, "E"),
    "audit.exported": (DCM, "110101", "Audit Log Used", None, "R"),
    "trial.created": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "C"),
    "trial.subject_added": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "C"),
    # readers (and, at creation, adjudicators) get their roles in the trial
    "trial.readers_assigned": (DCM, "110136", "Security Roles Changed", None, "U"),
    "trial.read_signed": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "U"),
    "trial.adjudicated": (AUDIT_EVENT_TYPE, "rest", "RESTful Operation", None, "C"),
}

#: FHIR AuditEventOutcome: 0 success, 4 minor failure, 8 serious failure, 12 major failure.
OUTCOMES = {"success": "0", "failure": "4"}
ACTIONS = frozenset("CRUDE")


def audit_event(event: Mapping[str, Any], *, observer: str = "Crossread") -> dict[str, Any]:
    """One AuditEvent resource from an event's fields (``id``, ``at``, ``action``, ``outcome``,
    ``actor_name``, ``project``, ``object_type``, ``object_id``, ``source_ip``, ``detail``)."""
    system, code, display, subtype, action = MAPPING[event["action"]]
    at = event["at"]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event["id"]),
        "type": {"system": system, "code": code, "display": display},
        "action": action,
        "recorded": at.isoformat() if isinstance(at, datetime) else str(at),
        "outcome": OUTCOMES[event["outcome"]],
        "outcomeDesc": event["action"],
        "agent": [_agent(event)],
        "source": {"observer": {"display": observer}, "site": event.get("project") or None},
    }
    if subtype:
        resource["subtype"] = [{"system": DCM, "code": subtype[0], "display": subtype[1]}]
    if event.get("object_id") or event.get("project"):
        resource["entity"] = [_entity(event)]
    if resource["source"]["site"] is None:
        del resource["source"]["site"]
    return resource


def _agent(event: Mapping[str, Any]) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "who": {"identifier": {"value": event.get("actor_name") or "anonymous"}},
        "requestor": True,
    }
    if event.get("source_ip"):
        agent["network"] = {"address": event["source_ip"], "type": NETWORK_TYPE_IP}
    return agent


def _entity(event: Mapping[str, Any]) -> dict[str, Any]:
    what = event.get("object_id") or event.get("project")
    entity: dict[str, Any] = {
        "what": {"identifier": {"value": what}},
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
    }
    if event.get("object_type"):
        entity["description"] = event["object_type"]
    return entity


def bundle(events: Iterable[Mapping[str, Any]], *, observer: str = "Crossread") -> dict[str, Any]:
    """A FHIR ``collection`` Bundle of AuditEvents."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": audit_event(event, observer=observer)} for event in events],
    }
