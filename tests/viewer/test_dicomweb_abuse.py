"""DICOMweb under abuse: every size a client controls has a bound, answered by a clear 4xx."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow_body

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------------------ STOW-RS from a browser session


def test_stow_with_a_session_and_its_csrf_token_is_stored(team):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(team["reader"])
    browser.get("/")  # sets the csrftoken cookie
    body, content_type = stow_body([ct_bytes()])
    url = "/projects/trial/dicomweb/studies"

    refused = browser.post(url, body, content_type=content_type)  # the cookie, but no X-CSRFToken
    assert refused.status_code == 403
    assert json.loads(refused.content)["code"] == "forbidden"

    token = browser.cookies["csrftoken"].value
    stored = browser.post(url, body, content_type=content_type, HTTP_X_CSRFTOKEN=token)
    assert stored.status_code == 200, stored.content
    assert len(json.loads(stored.content)["00081199"]["Value"]) == 1
