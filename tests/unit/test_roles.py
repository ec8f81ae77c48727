"""`serve --role`: one table says which part runs where; a split role needs Redis."""

from __future__ import annotations

import pytest

from contactcenter import cli
from contactcenter.app import PLUGIN_ROLES, PLUGINS, ROLES, create_app, runs_in
from contactcenter.config import Settings
from tests.conftest import SECRET_KEY as KEY


def routes(role: str) -> set[str]:
    app = create_app(Settings(secret_key=KEY, ami_enabled=False), role=role)
    return {r.name for r in app.router.resources() if r.name}


def test_every_plugin_has_a_role_and_the_table_is_consistent() -> None:
    assert set(PLUGINS) <= set(PLUGIN_ROLES)
    for part, roles in PLUGIN_ROLES.items():
        assert roles and roles <= set(ROLES), part
    # exactly one process owns the Asterisk side and the writer; web processes never do
    assert runs_in("telephony.plugin", "bridge") and not runs_in("telephony.plugin", "web")
    assert runs_in("telephony.agi_plugin", "all") and not runs_in("telephony.agi_plugin", "web")
    assert runs_in("ivr.plugin", "bridge") and not runs_in("ivr.plugin", "web")
    assert runs_in("telephony.actions", "web") and not runs_in("telephony.actions", "all")
    assert runs_in("agents.plugin", "web") and not runs_in("agents.plugin", "bridge")
    # one SMTP listener per site: several web processes would fight over its port
    assert runs_in("cases.email_plugin", "bridge") and runs_in("cases.email_plugin", "all")
    assert not runs_in("cases.email_plugin", "web")
    assert runs_in("cases.retention_plugin", "bridge")
    assert not runs_in("cases.retention_plugin", "web")


def test_the_pages_live_in_web_and_all_not_in_the_bridge() -> None:
    web, bridge, everything = routes("web"), routes("bridge"), routes("all")
    assert {"console", "console_ws", "api_queues"} <= web
    assert {"console", "console_ws", "api_queues"} <= everything
    assert not {"console", "console_ws", "api_queues"} & bridge
    assert "health" in bridge and "health" in web
    # issue 20: log-ins on the bridge spent the IVR's loop on argon2; it serves /health only
    assert bridge == {"health"}
    assert {"login", "logout", "index", "static"} <= web


def test_the_bridge_serves_health_alone() -> None:
    app = create_app(Settings(secret_key=KEY, ami_enabled=False), role="bridge")
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert paths == {"/health"}


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        create_app(Settings(), role="worker")


@pytest.mark.parametrize("role", ["bridge", "web"])
def test_a_split_role_needs_redis(role: str, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("CC_REDIS_URL", "CC_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CC_SECRET_KEY", KEY)
    monkeypatch.setenv("CC_AMI_USERNAME", "cc")
    monkeypatch.setenv("CC_AMI_SECRET", "s")
    assert cli.main(["serve", "--role", role]) == 2
    assert "needs CC_REDIS_URL" in capsys.readouterr().err
