"""A user's own window presets over REST (``/api/me/presets/``, viewer.user_presets): add, rename,
delete and order one's own; every size and number bounded; nobody reaches another's; the viewer page
hands them over, with each series' body region and the presets' order per region."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow
from viewer import user_presets
from viewer.models import UserPreset

pytestmark = pytest.mark.django_db

API = "/api/me/presets/"


def api(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token_for(user)}")


def post(client: Client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def patch(client: Client, url: str, body) -> object:
    return client.patch(url, json.dumps(body), content_type="application/json")


def test_add_rename_order_and_delete_ones_own_presets(team):
    reader = api(team["reader"])
    made = []
    for label, center, width in (("Lung wide", -550, 1700), ("Liver narrow", 70, 120), ("Bone hard", 600, 2600)):
        response = post(reader, API, {"modality": "ct", "label": f"  {label} ", "center": center, "width": width})
        assert response.status_code == 201, response.content
        made.append(response.json())
    assert [p["label"] for p in made] == ["Lung wide", "Liver narrow", "Bone hard"]  # trimmed
    assert {p["modality"] for p in made} == {"CT"}
    assert patch(reader, f"{API}{made[1]['id']}/", {"label": "Liver", "center": 60.5}).json()["center"] == 60.5
    ordered = post(reader, f"{API}order/", {"ids": [made[2]["id"], made[1]["id"]]}).json()["presets"]
    assert [p["label"] for p in ordered] == ["Bone hard", "Liver", "Lung wide"]
    assert [p["label"] for p in reader.get(API).json()["presets"]] == ["Bone hard", "Liver", "Lung wide"]
    assert reader.delete(f"{API}{made[0]['id']}/").status_code == 204
    assert [p["label"] for p in reader.get(API).json()["presets"]] == ["Bone hard", "Liver"]
    # another user sees none of them and reaches none: 404, as for a preset that does not exist
    other = api(team["viewer"])
    assert other.get(API).json()["presets"] == []
    assert patch(other, f"{API}{made[1]['id']}/", {"label": "Mine now"}).status_code == 404
    assert other.delete(f"{API}{made[1]['id']}/").status_code == 404
    assert post(other, f"{API}order/", {"ids": [made[1]["id"]]}).status_code == 404
    assert UserPreset.objects.get(pk=made[1]["id"]).label == "Liver"
    assert Client().get(API).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"modality": "CT", "label": "x" * 41, "center": 40, "width": 400},
        {"modality": "CT", "label": "   ", "center": 40, "width": 400},
        {"modality": "CT", "label": "ok", "center": "40", "width": 400},
        {"modality": "CT", "label": "ok", "center": 40, "width": 0.5},
        {"modality": "CT", "label": "ok", "center": 40, "width": 1e9},
        {"modality": "CT", "label": "ok", "center": True, "width": 400},
        {"modality": "C T", "label": "ok", "center": 40, "width": 400},
        {"modality": "CT", "label": "ok", "center": 40},
        {"modality": "CT", "label": "ok", "center": 40, "width": 400, "owner": "org"},
        ["not", "an", "object"],
    ],
)
def test_bad_presets_are_refused_with_a_reason_and_nothing_written(team, body):
    response = post(api(team["reader"]), API, body)
    assert response.status_code == 400
    assert response.json()["code"] and response.json()["detail"]
    assert not UserPreset.objects.exists()


def test_infinite_numbers_and_bad_orders_are_refused(team):
    reader = api(team["reader"])
    raw = '{"modality": "CT", "label": "inf", "center": 1e400, "width": 400}'
    assert reader.post(API, raw, content_type="application/json").status_code == 400
    mine = post(reader, API, {"modality": "CT", "label": "a", "center": 1, "width": 2}).json()
    assert patch(reader, f"{API}{mine['id']}/", {"width": -5}).status_code == 400
    for ids in ([mine["id"], mine["id"]], "1", [True], list(range(41))):
        assert post(reader, f"{API}order/", {"ids": ids}).status_code == 400


def test_a_user_has_a_bounded_number_of_presets(team):
    for i in range(user_presets.MAX_PRESETS):
        user_presets.create_preset(team["reader"], {"modality": "CT", "label": f"p{i}", "center": i, "width": 10})
    response = post(api(team["reader"]), API, {"modality": "CT", "label": "one more", "center": 1, "width": 10})
    assert response.status_code == 413
    assert UserPreset.objects.filter(user=team["reader"]).count() == user_presets.MAX_PRESETS


def test_the_viewer_page_hands_over_regions_orders_and_my_presets(client, team):
    chest = ct_dataset(BodyPartExamined="CHEST")
    head = ct_dataset(StudyInstanceUID=chest.StudyInstanceUID, SeriesDescription="Brain 5mm")
    assert stow(client, "trial", [to_bytes(chest), to_bytes(head)], token_for(team["reader"])).status_code == 200
    user_presets.create_preset(team["reader"], {"modality": "CT", "label": "Mine", "center": 40, "width": 400})
    client.force_login(team["reader"])
    page = client.get(f"/projects/trial/studies/{chest.StudyInstanceUID}/")
    boot = page.context["boot"]
    regions = {s["uid"]: s["region"] for s in boot["outline"]["series"]}
    assert regions == {chest.SeriesInstanceUID: "chest", head.SeriesInstanceUID: "head"}
    assert boot["presetOrders"]["CT"]["chest"][:2] == ["ct-soft-tissue", "ct-lung"]
    assert [p["label"] for p in boot["userPresets"]] == ["Mine"]
