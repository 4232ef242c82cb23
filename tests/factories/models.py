"""Model factories: ``create_*`` functions that fill in parents, exposed as fixtures."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from viewer.models import Membership, Project, Role

_counter = itertools.count(1)


def create_user(username: str | None = None, **extra: Any) -> Any:
    username = username or f"user{next(_counter)}"
    user = get_user_model().objects.create_user(username=username, password=f"pw-{username}-123!", **extra)
    return user


def create_project(slug: str | None = None, members: dict[Any, str] | None = None, **extra: Any) -> Project:
    slug = slug or f"project-{next(_counter)}"
    project = Project.objects.create(slug=slug, name=extra.pop("name", slug.title()), **extra)
    for user, role in (members or {}).items():
        Membership.objects.create(project=project, user=user, role=role)
    return project


def token_for(user: Any) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    return create_user


@pytest.fixture
def make_project(db: None) -> Callable[..., Project]:
    return create_project


@pytest.fixture
def team(db: None) -> dict[str, Any]:
    """A project 'trial' with one user per role, and an outsider who is a member of another project."""
    organizer, reader, viewer, outsider = (create_user(n) for n in ("org", "reader", "viewer", "outsider"))
    project = create_project(
        "trial", members={organizer: Role.ORGANIZER, reader: Role.READER, viewer: Role.VIEWER}
    )
    create_project("other", members={outsider: Role.ORGANIZER})
    return {"project": project, "organizer": organizer, "reader": reader, "viewer": viewer, "outsider": outsider}
