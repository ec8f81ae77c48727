from pathlib import Path

import pytest

from contactcenter.config import SettingsError, load_settings, require_production_secrets


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
        env={"CC_SECRET_KEY": "k" * 32, "CC_AMI_USERNAME": "u", "CC_AMI_SECRET": "s"}
    )
    require_production_secrets(ok)
