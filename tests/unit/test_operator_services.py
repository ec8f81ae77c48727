"""Operator commands: the Pbx actions they send and the domain errors operators read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from contactcenter.agents import presence as P
from contactcenter.agents.presence_store import Desired, PresenceStore
from contactcenter.agents.services import ConsoleError, OperatorService
from contactcenter.events import AgentStateChanged, QueueMembersSynced
from contactcenter.telephony.frames import AmiEvent, iter_frames
from contactcenter.telephony.members import MemberTracker
from contactcenter.web.auth import Principal
from tests.conftest import transcript
from tests.console_helpers import T0, FakePbx, later

ANA = Principal(1, "ana", "operator", "Ana Operator", "PJSIP/1001", ("sanitation", "potholes"))


def member(queue: str, *, paused: bool = False, reason: str | None = None) -> AgentStateChanged:
    return AgentStateChanged("default", queue, "PJSIP/1001", "Ana Operator", "not_in_use",
                             paused, reason, T0)


@pytest.fixture
def svc() -> tuple[OperatorService, FakePbx]:
    pbx = FakePbx()
    return OperatorService(P.Presence(), lambda: pbx), pbx


async def test_login_adds_each_queue_with_interface_and_name(svc: tuple[OperatorService, FakePbx]
                                                             ) -> None:
    s, pbx = svc
    assert "sanitation, potholes" in await s.login(ANA)
    assert pbx.actions == [("add", "sanitation", "PJSIP/1001", "Ana Operator"),
                           ("add", "potholes", "PJSIP/1001", "Ana Operator")]
    # Asterisk reports one of them: only the other is added again
    s.presence.apply(member("sanitation"))
    pbx.actions.clear()
    await s.login(ANA)
    assert pbx.actions == [("add", "potholes", "PJSIP/1001", "Ana Operator")]
    s.presence.apply(member("potholes"))
    # what we believe is checked with Asterisk: "already logged in" only when it says so
    pbx.actions.clear()
    assert "sanitation, potholes" in await s.login(ANA)  # Asterisk lost them: added again
    pbx.already = {("sanitation", "PJSIP/1001"), ("potholes", "PJSIP/1001")}
    with pytest.raises(ConsoleError, match="already logged in"):
        await s.login(ANA)


async def test_wrong_states_are_domain_errors(svc: tuple[OperatorService, FakePbx]) -> None:
    s, pbx = svc
    with pytest.raises(ConsoleError, match="Log in to your queues before pausing"):
        await s.pause(ANA, "lunch", T0)
    with pytest.raises(ConsoleError, match="Log in"):
        await s.ready(ANA, T0)
    with pytest.raises(ConsoleError, match="not logged in"):
        await s.logout(ANA, T0)
    s.presence.apply(member("sanitation"))
    with pytest.raises(ConsoleError, match="Unknown pause reason"):
        await s.pause(ANA, "nap", T0)
    with pytest.raises(ConsoleError, match="already ready"):
        await s.ready(ANA, T0)
    nophone = Principal(2, "x", "operator", "X", None, ("sanitation",))
    with pytest.raises(ConsoleError, match="no phone"):
        await s.login(nophone)
    assert pbx.actions == []


async def test_pause_ready_logout_send_the_actions(svc: tuple[OperatorService, FakePbx]) -> None:
    s, pbx = svc
    s.presence.apply(member("sanitation"))
    s.presence.apply(member("potholes"))
    await s.pause(ANA, "case-work", T0)
    assert pbx.actions[-1] == ("pause", "PJSIP/1001", True, None, "case-work")
    s.presence.apply(member("sanitation", paused=True, reason="case-work"))
    s.presence.apply(member("potholes", paused=True, reason="case-work"))
    with pytest.raises(ConsoleError, match="already paused"):
        await s.pause(ANA, "case-work", T0)
    await s.ready(ANA, later(60))
    assert pbx.actions[-1] == ("pause", "PJSIP/1001", False, None, "")
    await s.logout(ANA, later(70))
    assert pbx.actions[-2:] == [("remove", "potholes", "PJSIP/1001"),
                                ("remove", "sanitation", "PJSIP/1001")]


async def test_pbx_errors_become_clear_messages(svc: tuple[OperatorService, FakePbx]) -> None:
    s, pbx = svc
    pbx.fail = "Unable to add interface to queue: No such queue"
    with pytest.raises(ConsoleError) as info:
        await s.login(ANA)
    assert str(info.value).startswith("The phone system refused to log you in to sanitation")
    assert "No such queue" in str(info.value)
    no_pbx = OperatorService(P.Presence(), lambda: None)
    with pytest.raises(ConsoleError, match="not connected"):
        await no_pbx.login(ANA)


async def test_members_lost_in_an_asterisk_restart_are_added_back(
    svc: tuple[OperatorService, FakePbx],
) -> None:
    s, pbx = svc
    await s.login(ANA)
    s.presence.apply(member("sanitation"))
    s.presence.apply(member("potholes"))
    pbx.actions.clear()
    assert await s.restore_logins() == []  # nothing lost
    s.presence.apply(QueueMembersSynced("default", (), later(5)))  # restarted: no members
    assert await s.restore_logins() == ["PJSIP/1001"]
    assert [a[:2] for a in pbx.actions] == [("add", "sanitation"), ("add", "potholes")]
    # after a deliberate log-out nothing comes back
    s.presence.apply(member("sanitation"))
    await s.logout(ANA, later(9))
    s.presence.apply(QueueMembersSynced("default", (), later(10)))
    pbx.actions.clear()
    assert await s.restore_logins() == []


async def test_login_and_relogin_give_the_language_band_as_penalty() -> None:
    pbx = FakePbx()
    s = OperatorService(P.Presence(), lambda: pbx, routed_languages=("es", "fr"))
    beto = dataclasses.replace(ANA, languages=("en", "fr"))
    await s.login(beto)
    assert pbx.penalties == {("sanitation", "PJSIP/1001"): 2, ("potholes", "PJSIP/1001"): 2}
    pbx.penalties.clear()
    assert await s.restore_logins() == ["PJSIP/1001"]  # after an Asterisk restart: same band
    assert set(pbx.penalties.values()) == {2}
    await OperatorService(P.Presence(), lambda: pbx).login(ANA)  # no languages routed: 0
    assert set(pbx.penalties.values()) == {0}


# --- durable presence against the real restart captures (issue 19) ------------------------------

RESTART_PAUSED = Path(__file__).parents[1] / "data/asterisk/restart-paused"


def _status(raw: bytes, action_id: str) -> list[AmiEvent]:
    return [f for f in iter_frames(raw, keep_noise=False)
            if isinstance(f, AmiEvent) and f.get("ActionID") == action_id]


def _wishes() -> dict[str, Desired]:
    """What the console recorded before the captured restarts (ana paused for lunch, ben ready,
    eve paused for training), in the captures' interfaces."""
    return {
        "Local/2001@agents/n": Desired("Local/2001@agents/n", "ana", "Ana", ("sanitation",),
                                       paused=True, pause_reason="lunch"),
        "Local/2002@agents/n": Desired("Local/2002@agents/n", "ben", "Ben", ("sanitation",)),
        "Local/2005@agents/n": Desired("Local/2005@agents/n", "eve", "Eve", ("general-311",),
                                       penalty=1, paused=True, pause_reason="training"),
    }


async def test_persistent_members_after_a_real_restart_are_left_as_asterisk_kept_them() -> None:
    """restart-paused/: persistentmembers = yes; the first QueueStatus after the restart has
    everyone back, paused ones paused with their reason: nothing to put back."""
    raw = (RESTART_PAUSED / "ami-restart-paused-after.raw").read_bytes()
    synced = MemberTracker().from_queue_status(_status(raw, "cap-2"), 1_795_534_700.0)
    pbx = FakePbx()
    s = OperatorService(P.Presence(), lambda: pbx, logged_in=_wishes())
    for ev in synced:
        s.presence.apply(ev)
    assert await s.restore_logins() == []
    assert pbx.actions == []
    ana = s.presence.view("Local/2001@agents/n")
    assert (ana.state, ana.reason) == (P.PAUSED, "lunch")
    assert s.mismatches(later(3600)) == []
    assert all(s.observe(i, live=False) is None for i in _wishes())  # the wishes stand


async def test_members_lost_in_a_real_restart_come_back_paused_with_their_reason() -> None:
    """ami-restart-after.raw: persistentmembers = no; the queues are back and empty. Ana and
    Eve are added paused (never offered a call in between) and paused with their reason."""
    synced = MemberTracker().from_queue_status(
        _status(transcript("ami-restart-after.raw"), "re-3"), 1_795_534_700.0)
    pbx = FakePbx()
    s = OperatorService(P.Presence(), lambda: pbx, logged_in=_wishes())
    for ev in synced:
        s.presence.apply(ev)
    assert s.mismatches(later(3600)) == sorted(_wishes())
    assert sorted(await s.restore_logins()) == sorted(_wishes())
    assert sorted(pbx.paused_adds) == [("general-311", "Local/2005@agents/n"),
                                       ("sanitation", "Local/2001@agents/n")]
    pauses = sorted(a for a in pbx.actions if a[0] == "pause")
    assert pauses == [("pause", "Local/2001@agents/n", True, "sanitation", "lunch"),
                      ("pause", "Local/2005@agents/n", True, "general-311", "training")]
    assert pbx.penalties[("general-311", "Local/2005@agents/n")] == 1
    assert ("add", "sanitation", "Local/2002@agents/n", "Ben") in pbx.actions  # ready: unpaused
    assert ("sanitation", "Local/2002@agents/n") not in pbx.paused_adds


async def test_asterisk_reports_become_the_wish() -> None:
    pbx = FakePbx()
    s = OperatorService(P.Presence(), lambda: pbx)
    await s.login(ANA, T0)
    s.presence.apply(member("sanitation", paused=True, reason="break"))
    s.presence.apply(member("potholes", paused=True, reason="break"))
    d = s.observe("PJSIP/1001", live=True)  # a supervisor paused her from elsewhere
    assert d is not None and (d.paused, d.pause_reason) == (True, "break")
    s.presence.apply(member("sanitation"))
    s.presence.apply(member("potholes"))
    d = s.observe("PJSIP/1001", live=True)
    assert d is not None and not d.paused
    # an empty member list after a restart is not a log-out; a live removal of every queue is
    s.presence.apply(QueueMembersSynced("default", (), later(5)))
    assert s.observe("PJSIP/1001", live=False) is None
    assert s.logged_in["PJSIP/1001"].logged_in
    s.presence.apply(member("sanitation"))
    s.presence.apply(dataclasses.replace(member("sanitation"), device_state="logged_out"))
    d = s.observe("PJSIP/1001", live=True)
    assert d is not None and d.logged_in is False


@pytest.mark.store
async def test_presence_history_is_recorded_in_order(sessions: Any) -> None:
    store = PresenceStore(sessions)
    presence = P.Presence()
    presence.apply(member("sanitation"))
    presence.apply(member("sanitation", paused=True, reason="lunch"))
    presence.apply(dataclasses.replace(member("sanitation"), device_state="logged_out",
                                       at=later(60)))
    assert await store.record(presence.take_transitions()) == 3
    rows = await store.intervals("PJSIP/1001")
    assert [(r.state, r.reason, r.ended_at is None) for r in rows] == [
        ("available", None, False), ("paused", "lunch", False)]
    assert rows[1].ended_at == later(60)
