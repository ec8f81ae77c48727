"""Operator commands: the Pbx actions they send and the domain errors operators read."""

from __future__ import annotations

import dataclasses

import pytest

from contactcenter.agents import presence as P
from contactcenter.agents.services import ConsoleError, OperatorService
from contactcenter.events import AgentStateChanged, QueueMembersSynced
from contactcenter.web.auth import Principal
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
