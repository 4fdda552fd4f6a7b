from pathlib import Path

import pytest

from tests import ROOT
from wabot.config import load_settings, template_env
from wabot.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_defaults_to_dry_run() -> None:
    s = load_settings(ROOT / "config.yaml", {})
    assert s.whatsapp.dry_run
    assert s.whatsapp.api_url == "https://graph.facebook.com"
    assert s.whatsapp.api_version == "v25.0"
    assert s.server.port == 8080
    assert s.server.webhook_path == "/webhook/whatsapp"
    assert s.server.max_body_bytes == 4 * 1024 * 1024
    assert s.database == ROOT / "wabot.db"
    assert s.bot.flows == ROOT / "flows"
    assert s.bot.session_timeout == 30 * 60


def test_shipped_config_reads_every_variable_from_the_environment() -> None:
    env = {
        "WHATSAPP_TOKEN": "tok",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_APP_SECRET": "sec",
        "WHATSAPP_VERIFY_TOKEN": "ver",
        "WHATSAPP_API_URL": "http://127.0.0.1:9999/",
        "WHATSAPP_API_VERSION": "v26.0",
        "WABOT_PORT": "9001",
        "WABOT_DB": "/tmp/x.db",
    }
    s = load_settings(ROOT / "config.yaml", env)
    wa = s.whatsapp
    assert (wa.token, wa.phone_number_id, wa.app_secret, wa.verify_token) == ("tok", "106540352242922", "sec", "ver")
    assert wa.api_url == "http://127.0.0.1:9999"
    assert wa.api_version == "v26.0"
    assert not wa.dry_run
    assert s.server.port == 9001
    assert s.database == Path("/tmp/x.db")


def test_default_used_when_variable_is_empty(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "server: {port: '${P:-8181}'}\n"), {"P": ""})
    assert s.server.port == 8181


@pytest.mark.parametrize(
    ("text", "env", "key", "words"),
    [
        ("server: {port: '${WABOT_PORT}'}\n", {}, "server.port", "WABOT_PORT is not set"),
        ("server: {port: abc}\n", {}, "server.port", "whole number"),
        ("server: {port: 70000}\n", {}, "server.port", "at most 65535"),
        ("whatsapp: {api_url: 'graph.facebook.com'}\n", {}, "whatsapp.api_url", "http:// or https://"),
        ("whatsapp: {api_version: '25'}\n", {}, "whatsapp.api_version", "like v25.0"),
        ("logging: {level: LOUD}\n", {}, "logging.level", "one of DEBUG"),
        ("server: [1, 2]\n", {}, "server", "must be a section"),
        ("whatsapp: {token: t, phone_number_id: '1'}\n", {}, "whatsapp.app_secret", "WHATSAPP_APP_SECRET"),
    ],
)
def test_bad_setting_names_key_and_file(tmp_path: Path, text: str, env: dict[str, str], key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env)
    assert info.value.key == key
    assert info.value.file == str(path)
    message = str(info.value)
    assert key in message and str(path) in message and words in message
    assert "\n" not in message


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", {})
    with pytest.raises(ConfigError, match="not valid YAML on line 2"):
        load_settings(write(tmp_path, "a: 1\n b: [\n"), {})


def test_template_env_hides_secrets() -> None:
    env = template_env({"SHOP_API": "http://shop", "WHATSAPP_TOKEN": "t", "WHATSAPP_APP_SECRET": "s"},
                       ("SHOP_API", "WHATSAPP_TOKEN"))
    assert env == {"SHOP_API": "http://shop"}


def test_flows_read_only_the_environment_variables_bot_env_names(tmp_path: Path) -> None:
    """Issue 16 item 4: `{{ env.AWS_SECRET_ACCESS_KEY }}` reached the customer; now only bot.env is handed over."""
    environ = {"SHOP_API": "http://shop", "AWS_SECRET_ACCESS_KEY": "aws", "DATABASE_URL": "pg://x", "HOME": "/root"}
    settings = load_settings(write(tmp_path, "bot: {env: [SHOP_API, SHOP_TOKEN]}\n"), environ)
    assert settings.bot.env == ("SHOP_API", "SHOP_TOKEN")
    assert template_env(environ, settings.bot.env) == {"SHOP_API": "http://shop"}
    assert template_env(environ, load_settings(write(tmp_path, "bot: {}\n"), environ).bot.env) == {}
    with pytest.raises(ConfigError, match=r"bot\.env .* WHATSAPP_TOKEN, which flows may never read"):
        load_settings(write(tmp_path, "bot: {env: [WHATSAPP_TOKEN]}\n"), {})
    with pytest.raises(ConfigError, match=r"bot\.env .* must be a list of environment variable names"):
        load_settings(write(tmp_path, "bot: {env: SHOP_API}\n"), {})


def test_token_from_a_file_and_a_missing_file_named(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("EAAG123\n", encoding="utf-8")
    path = write(tmp_path, "whatsapp: {token_file: token, phone_number_id: '1', app_secret: s}\n")
    assert load_settings(path, {}).whatsapp.token == "EAAG123"
    path = write(tmp_path, "whatsapp: {token_file: nope, phone_number_id: '1', app_secret: s}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert caught.value.key == "whatsapp.token_file" and "nope" in str(caught.value)


def test_database_url_picks_postgresql_or_an_sqlite_path_and_refuses_other_schemes(tmp_path: Path) -> None:
    shipped = load_settings(ROOT / "config.yaml", {})
    assert (shipped.database_url, shipped.database_target, shipped.lease_seconds) == ("", str(ROOT / "wabot.db"), 10)
    url = "postgresql://wabot:secret@db:5432/shop"
    pg = load_settings(ROOT / "config.yaml", {"WABOT_DATABASE_URL": url})
    assert pg.database_url == pg.database_target == url
    path = load_settings(write(tmp_path, "database: {url: shop.db}\n"), {})
    assert (path.database_url, path.database) == ("", tmp_path / "shop.db")
    with pytest.raises(ConfigError, match=r"database\.url .* must start with postgresql://"):
        load_settings(write(tmp_path, "database: {url: 'mysql://x@y/z'}\n"), {})
@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("server: {prot: 8080}\n", "server.prot", "did you mean 'port'?"),
        ("outbox: {rate_per_secnd: 10}\n", "outbox.rate_per_secnd", "did you mean 'rate_per_second'?"),
        ("loging: {level: INFO}\n", "loging", "did you mean 'logging'?"),
        ("bot: {xyz: 1}\n", "bot.xyz", "the known ones are: flows, start_flow"),
    ],
)
def test_unknown_setting_is_named_with_the_closest_known_one(tmp_path: Path, text: str, key: str, hint: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert info.value.key == key
    assert key in str(info.value) and str(path) in str(info.value) and hint in str(info.value)


def test_schema_is_valid_and_the_shipped_config_matches_it() -> None:
    import jsonschema  # type: ignore[import-untyped,unused-ignore]
    import yaml

    from wabot.config import SCHEMA_PATH, schema

    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.Draft202012Validator(schema()).validate(yaml.safe_load((ROOT / "config.yaml").read_text("utf-8")))
    assert (ROOT / "config.yaml").read_text("utf-8").startswith(
        f"# yaml-language-server: $schema=wabot/{SCHEMA_PATH.name}\n"
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema()).validate({"outbox": {"rate_per_secnd": 1}})


def test_every_setting_in_the_schema_is_read(tmp_path: Path) -> None:
    """The schema and the reader agree both ways: a key declared but never read would be silently ignored."""
    from wabot import config
    from wabot.config import known_keys

    read: set[str] = set()
    original = config._Reader.get

    def spy(self: config._Reader, key: str, default: object) -> object:
        read.add(key)
        return original(self, key, default)

    config._Reader.get = spy  # type: ignore[method-assign]
    try:
        load_settings(write(tmp_path, ""), {})
    finally:
        config._Reader.get = original  # type: ignore[method-assign]
    declared = {f"{section}.{key}" for section, keys in known_keys().items() for key in keys}
    assert declared == read


def test_synchronous_and_trusted_proxies(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ""), {})
    assert (s.synchronous, s.server.trusted_proxies) == ("normal", ())
    s = load_settings(write(tmp_path, "database: {synchronous: FULL}\nserver: {trusted_proxies: [10.0.0.1]}\n"), {})
    assert (s.synchronous, s.server.trusted_proxies) == ("full", ("10.0.0.1",))
    with pytest.raises(ConfigError, match=r"database\.synchronous .* one of normal, full"):
        load_settings(write(tmp_path, "database: {synchronous: fast}\n"), {})
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies .* not 'proxy\.local'"):
        load_settings(write(tmp_path, "server: {trusted_proxies: [proxy.local]}\n"), {})


def test_a_token_without_a_phone_number_id_stops_start_up(tmp_path: Path) -> None:
    """Issue 16 item 15: it started in dry-run, took unsigned POSTs and ran http steps while /readyz said 200."""
    path = write(tmp_path, "whatsapp: {token: EAAG123}\n")
    with pytest.raises(ConfigError, match=r"whatsapp\.phone_number_id .* is empty, but a token is set"):
        load_settings(path, {})
    assert load_settings(write(tmp_path, "whatsapp: {}\n"), {}).whatsapp.dry_run  # neither: a deliberate dry-run
