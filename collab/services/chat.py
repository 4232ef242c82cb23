"""The session's chat: a message posted (checked, stored, sent after commit to those who may read it)
and the chat exported with the session (JSON, or CSV through ``crossread.csvsafe``).
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.db import IntegrityError, transaction

from audit.models import Action
from collab import events
from collab.access import Forbidden, SessionAccess, access_session
from collab.models import ChatMessage, SessionCase, Status
from collab.protocol import ChatSend
from collab.services.payloads import chat_frame, visible_chat
from collab.services.sessions import audit_session
from crossread import csvsafe
from crossread.errors import BadRequest, NotFound

#: Columns of the CSV export.
CSV_COLUMNS = ("id", "at", "author", "name", "text", "study", "series", "instance", "frame")


def check_view(access: SessionAccess, view: dict[str, Any]) -> dict[str, Any]:
    """A "look here" view: its study must be one of the session's cases that the sender reaches, and
    its series and instance in that study (through the gate: hidden ones answer as unknown ones)."""
    study = view["study"]
    in_session = SessionCase.objects.filter(session=access.session, study__study_instance_uid=study).exists()
    try:
        if not in_session:
            raise NotFound("not a case")
        access.project.study(study)
        if "instance" in view:
            access.project.instance(view["instance"], study=study, series=view["series"])
        elif "series" in view and not access.project.series().filter(
                series_instance_uid=view["series"], study__study_instance_uid=study).exists():
            raise NotFound("no such series")
    except NotFound:
        raise BadRequest("The view is not on one of this session's cases.") from None
    return view


def post_chat(user: Any, session_id: int, message: ChatSend, *, confirmed: SessionAccess | None = None,
              origin: events.Origin | None = None) -> dict[str, Any] | None:
    """Store a chat message and send it, once committed, to those who may read it (the sender gets it
    with its ``ref``). A ``ref`` used before by the same author is the same message: answered again to
    the sender alone (the returned frame), nothing stored twice."""
    usable = confirmed is not None and confirmed.session.pk == session_id and confirmed.user.pk == user.pk
    access = confirmed if usable and confirmed is not None else access_session(user, session_id)
    seat = access.require_seat()
    if access.session.status != Status.ACTIVE:
        raise Forbidden(f"The session is {access.session.status}; its chat is open while it is active.")
    view = check_view(access, dict(message.view)) if message.view is not None else None
    repeated = ChatMessage.objects.filter(session=access.session, author=user, client_ref=message.ref).first()
    if repeated is not None:
        return {"type": "chat.message", "ref": message.ref, "message": chat_frame(repeated)}
    try:
        with transaction.atomic():
            stored = ChatMessage.objects.create(session=access.session, author=user, text=message.text, view=view,
                                                client_ref=message.ref)
            frame = {"type": "chat.message", "message": chat_frame(stored)}
            events.broadcast(access.session.pk, events.hub_message("chat", frame, origin=origin, author=seat.as_dict()))
    except IntegrityError:  # the same ref at the same moment from another connection
        stored = ChatMessage.objects.get(session=access.session, author=user, client_ref=message.ref)
        return {"type": "chat.message", "ref": message.ref, "message": chat_frame(stored)}
    return None


def export_chat(access: SessionAccess, fmt: str) -> tuple[str, str]:
    """The chat as this user may read it, oldest first: ``(content type, body)`` in ``json`` or ``csv``."""
    if fmt not in ("json", "csv"):
        raise BadRequest("as must be json or csv.")
    messages = visible_chat(access)
    audit_session(Action.EXPORT, access.user, access.session, what="chat", format=fmt, messages=len(messages))
    if fmt == "csv":
        out = io.StringIO()
        writer = csvsafe.writer(out)
        writer.writerow(CSV_COLUMNS)
        for m in messages:
            view = m["view"] or {}
            writer.writerow([m["id"], m["at"], m["author"], m["name"], m["text"], view.get("study", ""),
                             view.get("series", ""), view.get("instance", ""), view.get("frame", "")])
        return "text/csv; charset=utf-8", out.getvalue()
    return "application/json", json.dumps({"session": access.session.pk, "chat": messages})
