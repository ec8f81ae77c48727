"""The editor's preview walk and the real engine agree: the same keys give the same prompts in
the same order and the same destination (engine over a real FastAGI socket)."""

from __future__ import annotations

import re

import pytest

from contactcenter.ivr.menu import load_menu
from contactcenter.ivr.preview import walk
from tests.agi_fake import Caller
from tests.ivr_support import FakeStore, Recorder, file_menu, running_ivr


def menu_with_submenu() -> dict:
    data = file_menu()
    data["nodes"][0]["options"].append({"digit": "8", "action": "submenu", "node": "more"})
    data["nodes"].append({
        "id": "more", "prompt": {"en": "311/en/more", "es": "311/es/more"}, "retries": 2,
        "options": [{"digit": "1", "action": "back"},
                    {"digit": "2", "action": "message_hangup",
                     "prompt": {"en": "311/en/hours", "es": "311/es/hours"}},
                    {"digit": "3", "action": "queue", "queue": "potholes",
                     "service": "pothole"}]})
    return data


def played(commands: list[str]) -> list[str]:
    files = []
    for cmd in commands:
        m = re.match(r"(?:GET DATA|STREAM FILE) (\S+)", cmd)
        if m:
            files.append(m.group(1))
    return files


@pytest.mark.parametrize("inputs", [
    ["1", "1"], ["2", "2"], ["1", "8", "3"], ["1", "8", "1", "2"], ["2", "8", "2"],
    ["1", "5", "5", "5"], ["1", "", "", ""], ["1", "8", "9", "9"], ["1", "*", "3"],
    ["3", "0"], ["1", "7"],
])
async def test_preview_matches_the_engine(inputs: list[str]) -> None:
    data = menu_with_submenu()
    store = FakeStore(data)
    recorder = Recorder()
    async with running_ivr(store, recorder) as server:
        caller = await Caller(inputs=list(inputs)).call(server.port)
    result = walk(load_menu(data), inputs)
    assert result.outcome is not None and result.used == len(inputs)
    assert [h.file for h in result.heard] == played(caller.commands)
    if result.outcome.kind == "queued":
        assert caller.variables["QUEUE"] == result.outcome.queue
        assert caller.variables.get("SERVICE") == result.outcome.service
    else:
        assert caller.variables.get("IVROUTCOME") == "self_served"
    assert [p for p in result.path] == recorder.results[0].path
