"""Words for a trial's codes on its pages: ``{% load trial_text %}`` then ``{{ state|state_text }}``."""

from __future__ import annotations

from django import template

register = template.Library()

#: ``services.subject_state`` codes as the pages show them.
STATE_TEXT = {"reading": "reading", "agreed": "agreed", "needs_adjudication": "needs adjudication",
              "adjudicated": "adjudicated", "done": "done"}


@register.filter
def state_text(code: object) -> str:
    """A subject's state in words (``needs_adjudication`` → ``needs adjudication``); empty for none."""
    if code is None:
        return ""
    return STATE_TEXT.get(str(code), str(code).replace("_", " "))
