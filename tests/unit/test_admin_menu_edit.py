"""Pure editor actions on a draft's JSON, the outline, and the admin form parsers."""

from __future__ import annotations

import pytest

from contactcenter.admin import forms, menu_edit
from contactcenter.admin.menu_edit import EditError
from contactcenter.ivr.menu import default_menu, validate

QUEUES = {"sanitation", "potholes", "general-311"}
SERVICES = {"missed-pickup", "pothole", "general-inquiry", "bulk-item"}


def test_add_option_keeps_the_original_untouched_and_validates() -> None:
    data = default_menu()
    out = menu_edit.save_option(data, "main", None, {"digit": "4", "action": "queue",
                                                     "queue": "sanitation",
                                                     "service": "bulk-item"})
    assert len(data["nodes"][0]["options"]) == 7  # a copy was edited
    assert out["nodes"][0]["options"][-1] == {"digit": "4", "action": "queue",
                                              "queue": "sanitation", "service": "bulk-item"}
    assert validate(out, QUEUES, SERVICES) == []


@pytest.mark.parametrize(("form", "field"), [
    ({"digit": "12345", "action": "queue", "queue": "x"}, "digit"),
    ({"digit": "a", "action": "queue", "queue": "x"}, "digit"),
    ({"digit": "4", "action": "dance"}, "action"),
    ({"digit": "4", "action": "queue"}, "queue"),
    ({"digit": "4", "action": "submenu"}, "node"),
    ({"digit": "4", "action": "submenu", "new_node": "bad id!"}, "new_node"),
    ({"digit": "4", "action": "message_hangup", "prompt_en": "bad\x01words"}, "prompt_en"),
    ({"digit": "4", "action": "transfer_external", "number": "call-me"}, "number"),
])
def test_malformed_option_forms_name_their_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(EditError) as err:
        menu_edit.save_option(default_menu(), "main", None, form)
    assert err.value.field == field


def test_submenu_to_a_new_node_then_rename_follows_references() -> None:
    data = menu_edit.save_option(default_menu(), "main", None,
                                 {"digit": "5", "action": "submenu", "new_node": "streets"})
    assert menu_edit.find_node(data, "streets") == {"id": "streets", "prompt": {},
                                                    "options": []}
    renamed, new_id = menu_edit.update_node(data, "streets", {
        "id": "roads", "prompt_en": "311/en/roads", "prompt_es": "311/es/roads"})
    assert new_id == "roads"
    assert renamed["nodes"][0]["options"][-1]["node"] == "roads"
    assert menu_edit.referrers(renamed, "roads") == ["main key 5"]
    with pytest.raises(EditError, match="still used by: main key 5"):
        menu_edit.delete_node(renamed, "roads")
    with pytest.raises(EditError, match="start menu cannot be deleted"):
        menu_edit.delete_node(renamed, "main")
    trees, unreachable = menu_edit.outline(renamed)
    assert unreachable == [] and trees[0]["options"][-1]["child"]["id"] == "roads"
    gone = menu_edit.delete_option(renamed, "main", 7)
    assert menu_edit.outline(gone)[1] == ["roads"]
    assert menu_edit.delete_node(gone, "roads")["nodes"][-1]["id"] == "main"


def test_move_options_within_and_across_nodes() -> None:
    data = menu_edit.save_option(default_menu(), "main", None,
                                 {"digit": "5", "action": "submenu", "new_node": "more"})
    up = menu_edit.move_option(data, "main", 0, "up")  # already first: unchanged
    assert up == data
    down = menu_edit.move_option(data, "main", 0, "down")
    assert [o["digit"] for o in down["nodes"][0]["options"][:2]] == ["2", "1"]
    moved = menu_edit.move_option_to(data, "main", 1, "more")
    assert menu_edit.find_node(moved, "more")["options"] == [
        {"digit": "2", "action": "queue", "queue": "potholes", "service": "pothole"}]
    with pytest.raises(EditError, match="into the submenu it leads to"):
        menu_edit.move_option_to(data, "main", 7, "more")


def test_settings_form() -> None:
    form = {"name": "Storm menu", "languages": "en, es", "default_language": "es",
            "timeout_ms": "4000", "retries": "2", "after_retries_queue": "general-311",
            "language_prompt_en": "For English, press 1.",
            "language_prompt_es": "Para  español,\n oprima 2.", "language_keys": "1=en, 2=es",
            "invalid_prompt_en": "Not a choice.", "invalid_prompt_es": "No es una opción."}
    out = menu_edit.update_settings(default_menu(), form)
    assert out["default_language"] == "es" and out["retries"] == 2
    assert out["language_menu"]["options"] == {"1": "en", "2": "es"}
    # words as typed, white space made single
    assert out["language_menu"]["prompt"] == {"en": "For English, press 1.",
                                              "es": "Para español, oprima 2."}
    assert validate(out, QUEUES, SERVICES) == []
    for bad, field in [({"retries": "99"}, "retries"), ({"languages": "English"}, "languages"),
                       ({"language_keys": "1=fr"}, "language_keys"),
                       ({"default_language": "fr"}, "default_language")]:
        with pytest.raises(EditError) as err:
            menu_edit.update_settings(default_menu(), {**form, **bad})
        assert err.value.field == field


def test_queue_form_parser() -> None:
    form = forms.parse_queue({
        "name": "parks", "display_name": "Parks", "strategy": "linear",
        "service_level_seconds": "20", "service_level_target": "90",
        "short_abandon_seconds": "5", "max_wait_target_seconds": "60",
        "wrapup_seconds": "30", "ring_timeout_seconds": "15", "timezone": "Europe/Madrid",
        "group_name": "main", "open_sat": "10:00", "close_sat": "14:00",
        "holidays": "2026-01-06, 2026-01-01 2026-01-06", "retry_seconds": "5",
        "joinempty": "yes", "leavewhenempty": "no", "announce_frequency": "60",
        "announce_holdtime": "once", "periodic_announce": "", "periodic_announce_frequency": "0",
        "musicclass": "default", "weight": "0", "language_wait_seconds": "30"}, creating=True)
    assert form.ok, form.errors
    assert form.values["office_hours"] == {"sat": ["10:00", "14:00"]}
    assert form.values["holidays"] == ["2026-01-01", "2026-01-06"]
    assert form.values["service_level_target"] == pytest.approx(0.9)
    bad = forms.parse_queue({"open_mon": "25:00", "close_mon": "26:00"}, creating=False)
    assert "24-hour clock" in bad.errors["hours_mon"]


def test_open311_attribute_rules() -> None:
    assert forms.open311_attribute_problems([]) == []
    assert forms.open311_attribute_problems({"code": "x"}) == [
        "the attributes must be a JSON list ([...]) of objects"]
    problems = forms.open311_attribute_problems([
        {"code": "a", "datatype": "string", "description": "A?", "values": [{"key": "k"}]},
        {"code": "a", "datatype": "number", "description": "B?", "required": "yes"},
        {"code": "c", "datatype": "multivaluelist", "description": "C?",
         "values": [{"key": "x", "name": "X"}, {"key": "x", "name": "Y"}], "colour": 1},
    ])
    text = " | ".join(problems)
    assert "only belongs to singlevaluelist" in text
    assert "the code is used twice" in text
    assert "\"required\" must be true or false" in text
    assert "value key 'x' is used twice" in text
    assert "unknown keys colour" in text


def test_diff_for_the_audit_log() -> None:
    before = default_menu()
    after = menu_edit.save_option(before, "main", 0, {"digit": "1", "action": "queue",
                                                      "queue": "potholes"})
    after = menu_edit.save_option(after, "main", None, {"digit": "5", "action": "submenu",
                                                        "new_node": "more"})
    after["retries"] = 2
    d = menu_edit.diff(before, after)
    assert d["settings"] == {"retries": [3, 2]}
    assert set(d["nodes"]) == {"main", "more"}
    assert d["nodes"]["more"]["before"] is None
    assert d["nodes"]["main"]["before"]["options"][0]["queue"] == "sanitation"
    assert d["nodes"]["main"]["after"]["options"][0]["queue"] == "potholes"
    assert menu_edit.diff(before, before) == {}
