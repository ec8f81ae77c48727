"""Prompts as slots of a menu (ivr/prompts.py): pure functions over the menu JSON."""

from __future__ import annotations

from contactcenter.ivr.menu import DEFAULT_WORDS, default_menu, load_menu, validate
from contactcenter.ivr.prompts import (
    apply_sounds,
    find_slot,
    placeholder_sounds,
    recordings,
    set_words,
    slots,
    sound_files,
)

QUEUES = {"sanitation", "potholes", "general-311"}
SERVICES = {"missed-pickup", "pothole", "general-inquiry", "bulk-item"}


def test_the_default_menu_has_words_for_every_prompt_in_english_and_spanish() -> None:
    data = default_menu()
    found = slots(data)
    assert len(found) == len(DEFAULT_WORDS) == 18
    for slot in found:
        assert set(slot.words) == {"en", "es"}, slot.id
        assert all(len(w.split()) >= 2 for w in slot.words.values()), slot.id
    assert validate(data, QUEUES, SERVICES) == []
    ids = [s.id for s in found]
    assert ids[:2] == ["language", "menu.invalid_prompt"]
    assert {"main", "main.9", "main.9.not_found", "main.9.status.in_progress", "main.7"} <= set(ids)
    assert find_slot(data, "main.9.status.in_progress") is not None
    assert find_slot(data, "main.9.status.in_progress").slug == "main-9-status-in-progress"  # type: ignore[union-attr]


def test_apply_sounds_gives_the_engine_file_names_and_leaves_the_words_alone() -> None:
    data = default_menu()
    sounds = {s.id: {lang: {"file": f"311/{s.slug}-{lang}00000000000000", "sha256": "x"}
                     for lang in ("en", "es")} for s in slots(data)}
    played = apply_sounds(data, sounds)
    menu = load_menu(played)
    assert menu.prompt(menu.node("main").prompt, "es") == "311/main-es00000000000000"
    assert menu.language_menu is not None
    assert menu.language_menu.prompt["en"] == "311/language-en00000000000000"
    assert data["nodes"][0]["prompt"]["en"].startswith("Welcome")  # a copy: words kept
    assert ("es", "311/main-es00000000000000") in sound_files(sounds)


def test_set_words_changes_one_slot_and_a_legacy_language_prompt_is_read() -> None:
    data = default_menu()
    out = set_words(data, "main.9.status.closed", {"en": "Done.", "es": "Hecho."})
    assert find_slot(out, "main.9.status.closed").words == {"en": "Done.", "es": "Hecho."}  # type: ignore[union-attr]
    assert find_slot(data, "main.9.status.closed").words["en"] == "Your request is closed."  # type: ignore[union-attr]
    legacy = dict(data, language_menu={"prompt": "311/choose-language",
                                       "options": {"1": "en", "2": "es"}})
    assert find_slot(legacy, "language").words == {"en": "311/choose-language"}  # type: ignore[union-attr]
    assert recordings({"recordings": {"main/en": {"sha256": "ab"}, "bad": 3}}) == {
        "main/en": {"sha256": "ab"}}


def test_a_version_without_audio_plays_file_names_of_old_or_a_name_asterisk_will_miss() -> None:
    data = default_menu()
    data["nodes"][0]["prompt"]["en"] = "311/en/main-menu"  # a sound file name, as of old
    menu = load_menu(apply_sounds(data, placeholder_sounds(data)))
    assert menu.prompt(menu.node("main").prompt, "en") == "311/en/main-menu"
    # words cannot be sent as a file: a name no publish writes, reported missing by Asterisk
    assert menu.prompt(menu.node("main").prompt, "es") == "311/main"
    assert menu.prompt(menu.prompts["goodbye_prompt"], "es") == "311/menu-goodbye-prompt"
