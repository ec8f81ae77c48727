"""Menu validation, rule by rule, and the loader's errors (the admin import uses both)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from contactcenter.ivr.menu import (
    MenuError,
    Problem,
    default_menu,
    load_menu,
    load_menu_json,
    references,
    validate,
)

QUEUES = {"sanitation", "potholes", "general-311"}
SERVICES = {"missed-pickup", "bulk-item", "pothole", "streetlight-out", "general-inquiry"}
LANGS = ["en", "es"]


def check(data: Any) -> list[Problem]:
    return validate(data, QUEUES, SERVICES, LANGS)


def menu() -> dict[str, Any]:
    data = copy.deepcopy(default_menu())
    data["nodes"][0]["options"].append({"digit": "4", "action": "submenu", "node": "streets"})
    data["nodes"].append({
        "id": "streets", "prompt": {"en": "311/en/streets", "es": "311/es/streets"},
        "options": [{"digit": "1", "action": "queue", "queue": "potholes", "service": "pothole"},
                    {"digit": "9", "action": "back"}],
    })
    return data


def only(problems: list[Problem], node: str | None, *words: str) -> None:
    assert len(problems) == 1, problems
    assert problems[0].node_id == node, problems
    for word in words:
        assert word in problems[0].message, problems


def test_the_default_menu_is_valid() -> None:
    assert check(default_menu()) == []
    assert check(menu()) == []
    assert load_menu(default_menu()).node("main").option("1") is not None


def test_digits_unique_within_a_node() -> None:
    data = menu()
    data["nodes"][1]["options"].append({"digit": "1", "action": "queue", "queue": "potholes"})
    only(check(data), "streets", "digit 1", "twice")


def test_the_same_digit_in_two_nodes_is_fine() -> None:
    data = menu()
    assert data["nodes"][0]["options"][0]["digit"] == data["nodes"][1]["options"][0]["digit"]
    assert check(data) == []


def test_every_node_reachable() -> None:
    data = menu()
    data["nodes"][0]["options"] = [o for o in data["nodes"][0]["options"] if o["digit"] != "4"]
    only(check(data), "streets", "not reachable")


def test_no_loop_without_an_exit() -> None:
    data = menu()
    data["nodes"][1]["options"] = [{"digit": "1", "action": "submenu", "node": "more"}]
    data["nodes"].append({"id": "more", "prompt": {"en": "a", "es": "b"},
                          "options": [{"digit": "1", "action": "submenu", "node": "streets"},
                                      {"digit": "2", "action": "repeat"}]})
    problems = check(data)
    assert {p.node_id for p in problems} == {"streets", "more"}, problems
    assert all("loop without an exit" in p.message for p in problems)


def test_a_loop_with_an_exit_is_fine() -> None:
    data = menu()
    data["nodes"][1]["options"].append({"digit": "2", "action": "submenu", "node": "main"})
    assert check(data) == []


def test_unknown_queue() -> None:
    data = menu()
    data["nodes"][1]["options"][0]["queue"] = "roads"
    only(check(data), "streets", "queue 'roads' does not exist")


def test_unknown_service_type() -> None:
    data = menu()
    data["nodes"][1]["options"][0]["service"] = "sinkhole"
    only(check(data), "streets", "service type 'sinkhole'")


def test_unknown_queue_in_after_retries_and_operator() -> None:
    data = menu()
    data["after_retries"] = {"action": "queue", "queue": "nowhere"}
    data["nodes"][0]["options"][3]["operator"] = {"action": "queue", "queue": "nope"}
    problems = check(data)
    assert [(p.node_id, "nowhere" in p.message or "nope" in p.message) for p in problems] == [
        (None, True), ("main", True)], problems


def test_every_leaf_routes_somewhere() -> None:
    data = menu()
    data["nodes"][1]["options"][0] = {"digit": "1", "action": "queue"}
    only(check(data), "streets", "routes to no queue")
    data = menu()
    data["nodes"][1]["options"] = []
    problems = check(data)
    assert any(p.node_id == "streets" and "no options" in p.message for p in problems)
    data = menu()
    data["nodes"][0]["options"][5] = {"digit": "0", "action": "submenu", "node": "ghost"}
    only(check(data), "main", "'ghost' does not exist")
    data = menu()
    data["nodes"][0]["options"][4] = {"digit": "7", "action": "message_hangup"}
    only(check(data), "main", "needs a prompt")


def test_prompts_present_in_every_language() -> None:
    data = menu()
    del data["nodes"][1]["prompt"]["es"]
    only(check(data), "streets", "prompt", "es")
    data = menu()
    data["invalid_prompt"] = {"en": "x"}
    only(check(data), None, "invalid_prompt", "es")
    data = menu()
    del data["nodes"][0]["options"][3]["status_prompts"]["closed"]["es"]
    only(check(data), "main", "status_prompts.closed", "es")
    data = menu()
    data["nodes"][0]["options"][4]["prompt"] = {"es": "x"}
    only(check(data), "main", "option 7", "en")


def test_a_required_language_missing_from_the_menu() -> None:
    problems = validate(default_menu(), QUEUES, SERVICES, ["en", "es", "fr"])
    assert any(p.node_id is None and "'fr'" in p.message for p in problems)


def test_language_menu_must_offer_every_language() -> None:
    data = menu()
    data["language_menu"]["options"] = {"1": "en"}
    only(check(data), None, "language_menu", "es")
    data = menu()
    del data["language_menu"]
    only(check(data), None, "language_menu")


def test_after_retries_must_not_retry_forever() -> None:
    data = menu()
    data["nodes"][1]["after_retries"] = {"action": "repeat"}
    only(check(data), "streets", "after_retries", "forever")


def test_back_from_the_start_node() -> None:
    data = menu()
    data["nodes"][0]["options"].append({"digit": "8", "action": "back"})
    only(check(data), "main", "back from the first menu")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(nodes=[]), "nodes must be a non-empty list"),
        (lambda d: d.update(start="nope"), "start 'nope' is not a node"),
        (lambda d: d.update(timeout_ms=10), "timeout_ms must be between"),
        (lambda d: d.update(retries="3"), "retries must be a whole number"),
        (lambda d: d["nodes"][0].update(id="bad id!"), "id 'bad id!'"),
        (lambda d: d["nodes"][1].update(id="main"), "two nodes have the id"),
        (lambda d: d["nodes"][0]["options"].append({"digit": "x", "action": "repeat"}),
         "digit 'x'"),
        (lambda d: d["nodes"][0]["options"].append({"digit": "6", "action": "explode"}),
         "unknown action 'explode'"),
        (lambda d: d["nodes"][0].update(prompt={"en": "bad\x00words", "es": "x"}),
         "the words contain control characters"),
        (lambda d: d["nodes"][0].update(prompt={"en": "x" * 601, "es": "x"}),
         "at most 600"),
        (lambda d: d.update(languages="en"), "languages must be"),
        (lambda d: d.update(default_language="fr"), "default_language 'fr'"),
        (lambda d: d["nodes"][0].update(options="1"), "options must be a list"),
        (lambda d: d["nodes"].append(7), "nodes[2] is not an object"),
    ],
)
def test_schema_errors_are_problems_not_crashes(change: Any, words: str) -> None:
    data = menu()
    change(data)
    problems = check(data)
    assert any(words in p.message for p in problems), problems
    if not any("start" in p.message or "language" in p.message for p in problems):
        with pytest.raises(MenuError):
            load_menu(data)


def test_loader_reports_bad_json_clearly() -> None:
    data, problems = load_menu_json(b'{"name": "x",\n "nodes": [}')
    assert data is None and "line 2" in problems[0].message
    data, problems = load_menu_json(b"\xff\xfe")
    assert data is None and "UTF-8" in problems[0].message
    data, problems = load_menu_json("[1, 2]")
    assert data is None and "JSON object" in problems[0].message
    data, problems = load_menu_json("[" * 100_000 + "]" * 100_000)
    assert data is None and problems


def test_loader_flags_duplicate_keys() -> None:
    text = json.dumps(default_menu()).replace('"name":', '"start": "main", "name":', 1)
    data, problems = load_menu_json(text)
    assert data is not None and "'start' appears twice" in problems[0].message


def test_a_valid_import_round_trips() -> None:
    data, problems = load_menu_json(json.dumps(menu()))
    assert problems == [] and check(data) == []


def test_references_lists_queues_and_services() -> None:
    queues, services = references(menu())
    assert queues == QUEUES
    assert services == {"missed-pickup", "pothole", "general-inquiry"}
