"""Every admin-editable queue setting reaches its queues.conf option (and the simulator reads it
back the same way); wrap-up is never Asterisk's; the language rule and bands."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from contactcenter.admin.forms import QUEUE_FIELDS, parse_queue
from contactcenter.queues.directory import ASTERISK_FIELDS, QueueInfo, fingerprint
from contactcenter.queues.languages import member_penalty
from contactcenter.telephony.queues_conf import (
    parse_config,
    parse_rules,
    queue_options,
    queue_sections,
    render_queues,
    render_rules,
)
from contactcenter.telephony.simulator.pbx import SimQueueConfig

BASE = QueueInfo("graffiti", display_name="Graffiti")

# field -> (a value away from the default, the option, what the option must then say)
MAPPING: dict[str, tuple[object, str, str]] = {
    "strategy": ("fewestcalls", "strategy", "fewestcalls"),
    "ring_timeout_seconds": (22, "timeout", "22"),
    "retry_seconds": (3, "retry", "3"),
    "service_level_seconds": (40, "servicelevel", "40"),
    "weight": (7, "weight", "7"),
    "joinempty": ("strict", "joinempty", "strict"),
    "leavewhenempty": ("loose", "leavewhenempty", "loose"),
    "announce_frequency": (90, "announce-frequency", "90"),
    "announce_position": (False, "announce-position", "no"),
    "announce_holdtime": ("no", "announce-holdtime", "no"),
    "periodic_announce": ("queue-periodic-announce", "periodic-announce",
                          "queue-periodic-announce"),
    "musicclass": ("calm", "musicclass", "calm"),
}


def options(q: QueueInfo) -> dict[str, str]:
    return dict(queue_options(q))


@pytest.mark.parametrize("name", sorted(MAPPING))
def test_each_setting_reaches_its_option(name: str) -> None:
    value, option, expected = MAPPING[name]
    before = options(BASE)
    after = options(dataclasses.replace(BASE, **{name: value}))
    assert after[option] == expected and before.get(option) != expected
    changed = {k for k in after if after.get(k) != before.get(k)} | set(after) ^ set(before)
    assert changed <= {option, "periodic-announce-frequency", "min-announce-frequency"}


def test_the_periodic_announcement_frequency_needs_a_file() -> None:
    assert options(dataclasses.replace(BASE, periodic_announce_frequency=45))[
        "periodic-announce-frequency"] == "0"
    q = dataclasses.replace(BASE, periodic_announce="queue-periodic-announce",
                            periodic_announce_frequency=45)
    assert options(q)["periodic-announce-frequency"] == "45"


def test_every_asterisk_setting_of_the_admin_form_is_mapped() -> None:
    """A new column for Asterisk must get a mapping here (and in queue_options)."""
    mapped = set(MAPPING) | {"periodic_announce_frequency", "language_wait_seconds"}
    assert set(ASTERISK_FIELDS) | {"strategy", "ring_timeout_seconds",
                                   "service_level_seconds"} == mapped
    assert set(ASTERISK_FIELDS) <= set(QUEUE_FIELDS)


@pytest.mark.parametrize("wrapup", [0, 30, 3600])
def test_asterisk_never_has_a_wrapup_of_its_own(wrapup: int) -> None:
    assert options(dataclasses.replace(BASE, wrapup_seconds=wrapup))["wrapuptime"] == "0"


def test_the_language_rule_opens_the_queue_after_its_wait(tmp_path: Path) -> None:
    (tmp_path / "r.conf").write_text(render_rules([dataclasses.replace(
        BASE, language_wait_seconds=12)]))
    rules = parse_rules(parse_config(tmp_path / "r.conf"))
    assert [(c.after, c.max_penalty, c.min_penalty) for c in rules["lang-graffiti"]] == [
        (12, 99, 0)]


def test_the_simulator_reads_what_is_written(tmp_path: Path) -> None:
    q = dataclasses.replace(BASE, strategy="linear", ring_timeout_seconds=22, retry_seconds=3,
                            joinempty="no", leavewhenempty="yes", weight=4)
    (tmp_path / "q.conf").write_text(render_queues([q, QueueInfo("other")]))
    sections = queue_sections(parse_config(tmp_path / "q.conf"))
    assert set(sections) == {"graffiti", "other"}
    cfg = SimQueueConfig.from_options("graffiti", sections["graffiti"])
    assert (cfg.strategy, cfg.timeout, cfg.retry, cfg.wrapuptime, cfg.joinempty,
            cfg.leavewhenempty, cfg.weight) == ("linear", 22, 3, 0, False, True, 4)


def test_the_admin_form_takes_every_setting_and_refuses_nonsense() -> None:
    raw = {"display_name": "Graffiti", "strategy": "ringall", "service_level_seconds": "15",
           "service_level_target": "80", "short_abandon_seconds": "5",
           "max_wait_target_seconds": "60", "wrapup_seconds": "30",
           "ring_timeout_seconds": "15", "timezone": "UTC", "group_name": "main",
           "retry_seconds": "3", "joinempty": "strict", "leavewhenempty": "no",
           "announce_frequency": "0", "announce_holdtime": "once", "periodic_announce": "",
           "periodic_announce_frequency": "0", "musicclass": "default", "weight": "2",
           "language_wait_seconds": "20"}
    form = parse_queue(raw, creating=False)
    assert form.ok, form.errors
    assert form.values["joinempty"] == "strict" and form.values["announce_position"] is False
    bad = parse_queue({**raw, "joinempty": "maybe", "musicclass": "a b",
                       "periodic_announce": "x;y", "weight": "-1"}, creating=False)
    assert {"joinempty", "musicclass", "periodic_announce", "weight"} <= set(bad.errors)


def test_member_penalty_is_the_first_routed_language_band() -> None:
    assert member_penalty(["en"], ["es", "fr"]) == 0
    assert member_penalty(["en", "ES"], ["es", "fr"]) == 1
    assert member_penalty(["fr"], ["es", "fr"]) == 2
    assert member_penalty(["fr", "es"], ["es", "fr"]) == 1


def test_fingerprint_follows_any_setting() -> None:
    assert fingerprint([BASE]) == fingerprint([QueueInfo("graffiti", display_name="Graffiti")])
    assert fingerprint([BASE]) != fingerprint([dataclasses.replace(BASE, weight=1)])


@pytest.mark.parametrize("bad", [
    {"name": "x]\n[evil"}, {"musicclass": "default\n#include /etc/passwd"},
    {"periodic_announce": "a;b"}, {"joinempty": "yes\nwrapuptime=30"},
])
def test_a_row_written_behind_the_forms_cannot_inject_config(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        render_queues([dataclasses.replace(BASE, **bad)])  # type: ignore[arg-type]


def test_a_display_name_stays_in_its_comment() -> None:
    text = render_queues([dataclasses.replace(BASE, display_name="Graffiti\r\n[evil]\x00")])
    assert "[graffiti]   ; Graffiti [evil]\n" in text and "\n[evil]" not in text
