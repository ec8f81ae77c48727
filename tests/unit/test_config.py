import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from contactcenter.config import (
    SettingsError,
    address_in,
    key_weakness,
    load_settings,
    require_production_secrets,
)
from tests.conftest import SECRET_KEY as KEY


def test_defaults_need_nothing() -> None:
    s = load_settings(env={})
    assert s.database_url.startswith("sqlite+aiosqlite:///")
    assert s.redis_url == ""
    assert s.http_port == 8080


def test_environment_overrides_ini(tmp_path: Path) -> None:
    ini = tmp_path / "cc.ini"
    ini.write_text("[contactcenter]\nhttp_port = 9000\nami_host = 10.0.0.5\n")
    s = load_settings(env={"CC_CONFIG": str(ini), "CC_HTTP_PORT": "9100"})
    assert s.http_port == 9100
    assert s.ami_host == "10.0.0.5"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CC_HTTP_PORT": "eighty"}, "CC_HTTP_PORT"),
        ({"CC_HTTP_PORT": "70000"}, "CC_HTTP_PORT"),
        ({"CC_AGI_PORT": "-1"}, "CC_AGI_PORT"),
        ({"CC_AMI_ENABLED": "perhaps"}, "CC_AMI_ENABLED"),
        ({"CC_DATBASE_URL": "x"}, "CC_DATBASE_URL"),
        ({"CC_DATABASE_URL": "mysql://x"}, "CC_DATABASE_URL"),
        ({"CC_REDIS_URL": "localhost:6379"}, "CC_REDIS_URL"),
        ({"CC_AMI_SERVERS": "a=host"}, "CC_AMI_SERVERS"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        load_settings(env=env)


def test_unknown_ini_key_is_named(tmp_path: Path) -> None:
    ini = tmp_path / "cc.ini"
    ini.write_text("[contactcenter]\nhttp_prot = 1\n")
    with pytest.raises(SettingsError, match="http_prot"):
        load_settings(env={"CC_CONFIG": str(ini)})


def test_missing_ini_file() -> None:
    with pytest.raises(SettingsError, match="CC_CONFIG"):
        load_settings(env={"CC_CONFIG": "/nonexistent/cc.ini"})


def test_several_ami_servers() -> None:
    s = load_settings(env={"CC_AMI_SERVERS": "pbx1=10.0.0.1:5038, pbx2=10.0.0.2:5039"})
    assert [(e.name, e.host, e.port) for e in s.ami_endpoints()] == [
        ("pbx1", "10.0.0.1", 5038),
        ("pbx2", "10.0.0.2", 5039),
    ]


def test_serve_refuses_default_secrets() -> None:
    with pytest.raises(SettingsError, match="CC_SECRET_KEY"):
        require_production_secrets(load_settings(env={}))
    ok = load_settings(
        env={"CC_SECRET_KEY": KEY, "CC_AMI_USERNAME": "u", "CC_AMI_SECRET": "s"}
    )
    require_production_secrets(ok)


# --- issue 20: keys, allow-lists, the public URL ----------------------------------------------


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(32), lambda: secrets.token_hex(16),
                                  lambda: secrets.token_hex(32), lambda: KEY],
                         ids=["urlsafe32", "hex16", "hex32", "fixed"])
def test_random_keys_pass_the_key_rule(make: Callable[[], str]) -> None:
    key = make()  # made when the test runs: the test ids stay the same from run to run
    assert key_weakness(key) is None
    assert load_settings(env={"CC_SECRET_KEY": key}).secret_key == key


@pytest.mark.parametrize("key,why", [
    ("x", "at least 32"),
    ("short-but-random-9f8a7", "at least 32"),
    ("k" * 40, "predictable"),
    ("changeme-changeme-changeme-changeme", "predictable"),
    ("abcdefghijklmnopqrstuvwxyz0123456789", "predictable"),
    ("bench-secret-key-" + "x" * 32, "predictable"),
])
def test_short_or_predictable_keys_are_refused_naming_the_key(key: str, why: str) -> None:
    for name in ("CC_SECRET_KEY", "CC_HEALTH_API_KEY"):
        with pytest.raises(SettingsError, match=f"{name} .*{why}") as err:
            load_settings(env={name: key})
        assert "\n" not in str(err.value) and "token_urlsafe" in str(err.value)


def test_a_weak_key_is_refused_by_create_app_too() -> None:
    from contactcenter.app import create_app
    from contactcenter.config import Settings

    with pytest.raises(SettingsError, match="CC_SECRET_KEY"):
        create_app(Settings(secret_key="k" * 40, ami_enabled=False))


def test_the_demo_generates_a_key_that_passes() -> None:
    from contactcenter.cli import demo_settings

    settings = demo_settings(load_settings(env={}), set())
    assert key_weakness(settings.secret_key) is None


def test_address_lists_and_public_url() -> None:
    s = load_settings(env={"CC_AGI_ALLOWED": "10.0.0.5, 10.1.0.0/16", "CC_TRUSTED_PROXIES": "::1"})
    nets = s.agi_networks()
    assert nets is not None
    assert address_in("10.1.2.3", nets) and address_in("::ffff:10.0.0.5", nets)
    assert not address_in("10.0.0.6", nets) and not address_in("junk", nets)
    assert address_in("::1", s.proxy_networks())
    assert load_settings(env={"CC_AGI_ALLOWED": "*"}).agi_networks() is None
    assert load_settings(env={}).agi_networks() is not None  # loopback only by default
    with pytest.raises(SettingsError, match="CC_AGI_ALLOWED: 'asterisk' is not an IP"):
        load_settings(env={"CC_AGI_ALLOWED": "asterisk"})
    with pytest.raises(SettingsError, match="CC_PUBLIC_URL"):
        load_settings(env={"CC_PUBLIC_URL": "https://311.example.gov/app"})
    with pytest.raises(SettingsError, match="CC_TLS_CERT and CC_TLS_KEY"):
        load_settings(env={"CC_TLS_CERT": "/etc/hosts"})
    with pytest.raises(SettingsError, match="CC_HTTP_MAX_CONNECTIONS_PER_ADDRESS"):
        load_settings(env={"CC_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "0"})
