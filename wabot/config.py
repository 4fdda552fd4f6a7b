"""Settings: config.yaml with `${VAR}` / `${VAR:-default}` taken from the environment."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from wabot.errors import ConfigError
from wabot.templates import DEFAULT_TIMEZONE

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# Every setting wabot reads, with its description for editors: the one home of the settings' names.
SCHEMA_PATH = Path(__file__).with_name("config.schema.json")

Synchronous = Literal["normal", "full"]

# Names never handed to flow templates as `env.X`, whatever the config says.
SECRET_VARS = (
    "WHATSAPP_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WABOT_ADMIN_TOKEN", "WABOT_EVENTS_SECRET",
)


@dataclass(frozen=True, slots=True)
class WhatsApp:
    token: str
    phone_number_id: str
    app_secret: str
    verify_token: str
    api_url: str
    api_version: str
    timeout: float
    read_receipts: bool = False  # mark each message read and show "typing…" while the bot works on it

    @property
    def dry_run(self) -> bool:
        """No credentials to send with: replies are logged instead of sent."""
        return not (self.token and self.phone_number_id)


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int
    webhook_path: str
    max_body_bytes: int
    max_batch: int  # updates accepted in one POST (Meta sends up to 1,000)
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For is believed
    body_timeout: float = 10.0  # seconds a POST may take to send its body (a slow sender is cut off)
    max_connections: int = 512  # POSTs read at once; more answer 503 at once (Meta delivers them again)


STOP_WORDS = ("STOP", "hủy đăng ký")  # the shipped defaults of bot.stop_words and bot.start_words
START_WORDS = ("START", "đăng ký lại")


@dataclass(frozen=True, slots=True)
class BotSettings:
    flows: Path
    start_flow: str
    default_language: str
    session_timeout: float  # seconds
    timezone: str
    stop_words: tuple[str, ...] = ()  # opt out of messages the bot starts (templates)
    start_words: tuple[str, ...] = ()  # opt back in
    handoff_timeout: float = 4 * 3600.0  # seconds a handoff waits for a person's answer before it ends
    desk: bool = False  # the handoff desk (admin API) is on: someone can answer and give conversations back
    # the environment variables flows may read as `{{ env.X }}` (an allow-list); None only for the author
    # tools in a folder without config.yaml, where the author's own environment (secrets removed) is seen
    env: tuple[str, ...] | None = None
    max_state_bytes: int = 256 * 1024  # a conversation's saved variables; past it the largest are dropped


@dataclass(frozen=True, slots=True)
class Outbox:
    rate_per_second: float
    max_attempts: int
    concurrency: int
    shutdown_grace: float  # seconds to flush on SIGTERM
    retry_for: float = 24 * 3600.0  # seconds a retryable failure (Graph down, 5xx, 429) keeps being retried
    max_backoff: float = 60.0  # longest wait between two tries of one reply


MEDIA_TYPES = (  # media.types' default: photos, stickers, PDF and Office documents, voice notes, videos
    "image/jpeg", "image/png", "image/webp", "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "audio/ogg", "audio/mpeg", "video/mp4",
)


@dataclass(frozen=True, slots=True)
class Media:
    """Files customers send to questions (server/media.py): where they go, what is taken, the signed links."""

    folder: Path  # default: `media` beside the SQLite database (or the config file)
    max_bytes: int = 16 * 1024 * 1024
    types: tuple[str, ...] = MEDIA_TYPES  # MIME types taken, checked on the bytes ("image/*" allowed)
    download: Literal["answer", "link"] = "answer"  # "link": only when the file is first needed
    link_hours: float = 24.0  # how long a signed link works
    secret: str = ""  # signs the links; empty: a random one kept in the folder (.link-secret)
    base_url: str = ""  # how the shop's systems reach the admin listener; empty: http://admin.host:admin.port


@dataclass(frozen=True, slots=True)
class Settings:
    file: Path
    whatsapp: WhatsApp
    server: Server
    bot: BotSettings
    database: Path
    outbox: Outbox
    log_level: str
    log_format: str  # "text" or "json"
    mask_numbers: bool = True  # customers' numbers shortened in logs (8491****678)
    admin_token: str = ""  # empty: no admin API
    handoff_notify: str = ""  # a WhatsApp number told when a customer waits for a person
    retention_days: float = 0  # 0: keep conversation history forever
    admin_host: str = "127.0.0.1"  # the admin listener (desk API, metrics, console, business API)
    admin_port: int = 8081  # 0: a free port chosen by the system (tests)
    events_url: str = ""  # the shop's receiver of signed events (docs/api.md); empty: no events kept
    events_secret: str = ""  # signs each event (X-Wabot-Signature-256), as Meta signs its webhooks
    events_max_attempts: int = 10  # deliveries tried before an event is dead-lettered
    synchronous: Synchronous = "normal"  # SQLite's durability: normal survives kill -9, full a power cut too
    quick_answers: tuple[str, ...] = ()  # the console's ready-made replies, one tap each
    console_session_hours: float = 12  # how long a console sign-in lasts
    database_url: str = ""  # postgresql://...: PostgreSQL (several instances may share it); empty: SQLite
    lease_seconds: float = 10.0  # PostgreSQL: how long a dead instance's customers wait for another one
    http_private_hosts: tuple[str, ...] = ()  # private hosts http steps may reach (e.g. a shop API on 127.0.0.1)
    http_max_answer_bytes: int = 1024 * 1024  # an http step's answer larger than this fails the step
    media: Media = field(default_factory=lambda: Media(Path("media")))

    @property
    def database_target(self) -> str:
        """What `open_database` opens: the PostgreSQL URL, else the SQLite file."""
        return self.database_url or str(self.database)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check `path`; raise ConfigError naming the key and the file for anything wrong."""
    env = os.environ if environ is None else environ
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"The configuration file {file} does not exist.", key="", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The configuration file {file} cannot be read: {exc}.", key="", file=file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" on line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"The configuration file {file} is not valid YAML{line}.", key="", file=file
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"The configuration file {file} must be a mapping of sections.", key="", file=file)
    _check_keys(raw, file)
    r = _Reader(raw, env, file, path.parent)
    settings = Settings(
        file=path,
        whatsapp=WhatsApp(
            token=r.secret("whatsapp.token", "whatsapp.token_file"),
            phone_number_id=r.text("whatsapp.phone_number_id", ""),
            app_secret=r.text("whatsapp.app_secret", ""),
            verify_token=r.text("whatsapp.verify_token", ""),
            api_url=r.url("whatsapp.api_url", "https://graph.facebook.com"),
            api_version=r.match("whatsapp.api_version", "v25.0", r"v\d+\.\d+", "like v25.0"),
            timeout=r.number("whatsapp.timeout", 10.0, low=0.1),
            read_receipts=r.flag("whatsapp.read_receipts", False),
        ),
        server=Server(
            host=r.text("server.host", "0.0.0.0"),
            port=int(r.number("server.port", 8080, low=0, high=65535, integer=True)),
            webhook_path=r.match("server.webhook_path", "/webhook/whatsapp", r"/\S*", "a path starting with /"),
            max_body_bytes=int(r.number("server.max_body_bytes", 4 * 1024 * 1024, low=1024, integer=True)),
            max_batch=int(r.number("server.max_batch", 5000, low=1, integer=True)),
            body_timeout=r.number("server.body_timeout_seconds", 10, low=0.1),
            max_connections=int(r.number("server.max_connections", 512, low=1, integer=True)),
            trusted_proxies=r.networks("server.trusted_proxies"),
        ),
        bot=BotSettings(
            flows=r.path("bot.flows", "flows"),
            start_flow=r.text("bot.start_flow", "main"),
            default_language=r.text("bot.default_language", "vi"),
            session_timeout=60 * r.number("bot.session_timeout_minutes", 30, low=0),
            timezone=r.text("bot.timezone", DEFAULT_TIMEZONE),
            stop_words=r.words("bot.stop_words", STOP_WORDS),
            start_words=r.words("bot.start_words", START_WORDS),
            handoff_timeout=60 * r.number("bot.handoff_timeout_minutes", 240, low=1),
            desk=bool(r.text("admin.token", "")),
            env=r.names("bot.env"),
            max_state_bytes=int(r.number("bot.max_state_bytes", 256 * 1024, low=1024, integer=True)),
        ),
        database=r.path("database.path", "wabot.db"),
        outbox=Outbox(
            rate_per_second=r.number("outbox.rate_per_second", 80, low=0.1),
            max_attempts=int(r.number("outbox.max_attempts", 12, low=1, integer=True)),
            concurrency=int(r.number("outbox.concurrency", 64, low=1, integer=True)),
            shutdown_grace=r.number("outbox.shutdown_grace_seconds", 10, low=0),
            retry_for=3600 * r.number("outbox.retry_hours", 24, low=0),
            max_backoff=r.number("outbox.max_backoff_seconds", 60, low=0.1),
        ),
        log_level=r.choice("logging.level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        log_format=r.choice("logging.format", "text", ("text", "json")),
        mask_numbers=r.flag("logging.mask_numbers", True),
        admin_token=r.text("admin.token", ""),
        handoff_notify=r.match("admin.notify", "", r"\+?\d*", "a phone number in digits, like 84912345678").lstrip("+"),
        retention_days=r.number("history.retention_days", 90, low=0),
        http_private_hosts=tuple(h.lower() for h in r.words("http.private_hosts", ())),
        http_max_answer_bytes=int(r.number("http.max_answer_bytes", 1024 * 1024, low=1, integer=True)),
        admin_host=r.text("admin.host", "127.0.0.1"),
        admin_port=int(r.number("admin.port", 8081, low=0, high=65535, integer=True)),
        events_url=r.url("events.url", "http://-") if r.text("events.url", "") else "",
        events_secret=r.text("events.secret", ""),
        events_max_attempts=int(r.number("events.max_attempts", 10, low=1, integer=True)),
        synchronous="full" if r.choice("database.synchronous", "normal", ("normal", "full")) == "full" else "normal",
        database_url=r.text("database.url", ""),
        lease_seconds=r.number("database.lease_seconds", 10, low=0.5),
        quick_answers=r.words("console.quick_answers", ()),
        console_session_hours=r.number("console.session_hours", 12, low=0.01),
        media=Media(
            folder=r.path("media.folder", str((r.path("database.path", "wabot.db").parent) / "media")),
            max_bytes=int(r.number("media.max_bytes", 16 * 1024 * 1024, low=1, integer=True)),
            types=tuple(t.lower() for t in r.words("media.types", MEDIA_TYPES)),
            download="link" if r.choice("media.download", "answer", ("answer", "link")) == "link" else "answer",
            link_hours=r.number("media.link_hours", 24, low=0.01),
            secret=r.text("media.secret", ""),
            base_url=r.url("media.base_url", "http://-") if r.text("media.base_url", "") else "",
        ),
    )
    url = settings.database_url
    if url and not url.startswith(("postgresql://", "postgres://")):
        if "://" in url:
            raise r.fail("database.url", "must start with postgresql:// (PostgreSQL) or be an SQLite file path")
        settings = dataclasses.replace(settings, database=r.path("database.url", ""), database_url="")
    wa = settings.whatsapp
    if wa.token and not wa.phone_number_id:  # half configured: neither live nor a deliberate dry-run (issue 16)
        raise r.fail(
            "whatsapp.phone_number_id",
            "is empty, but a token is set: set it too to go live (with WHATSAPP_APP_SECRET), or unset the token "
            "for a dry-run that logs replies instead of sending them",
        )
    if not wa.dry_run and not wa.app_secret:
        raise r.fail(
            "whatsapp.app_secret",
            "is empty, but a token is set: without the app secret wabot cannot tell Meta's webhooks from forged "
            "ones. Set WHATSAPP_APP_SECRET (Meta App Dashboard > App settings > Basic > App secret)",
        )
    if settings.events_url and not settings.events_secret:
        raise r.fail("events.secret", "is empty, but events.url is set: the shop's systems could not tell wabot's "
                     "events from forged ones. Set WABOT_EVENTS_SECRET to a long random string")
    return settings


@cache
def schema() -> dict[str, Any]:
    """config.schema.json: the settings, their types and descriptions (editors complete config.yaml from it)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def known_keys() -> dict[str, tuple[str, ...]]:
    """Section -> the settings it may hold, as the schema declares them."""
    return {name: tuple(section.get("properties", {})) for name, section in schema()["properties"].items()}


def _check_keys(raw: dict[str, Any], file: str) -> None:
    """Stop at the first section or setting the schema does not know, with the closest known name."""
    known = known_keys()
    for name, section in raw.items():
        if name not in known:
            raise ConfigError(f"Section {name} in {file} is not a wabot setting{_closest(str(name), known)}.",
                              key=str(name), file=file)
        if not isinstance(section, dict):
            continue  # the reader says what a section must be
        for key in section:
            if key not in known[name]:
                raise ConfigError(
                    f"Setting {name}.{key} in {file} is not a wabot setting{_closest(str(key), known[name])}.",
                    key=f"{name}.{key}", file=file,
                )


def _closest(name: str, known: Mapping[str, object] | tuple[str, ...]) -> str:
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if found:
        return f"; did you mean '{found[0]}'?"
    return f" (the known ones are: {', '.join(known)})"


_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PWD|KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)


def secret_values(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Values never to be logged: wabot's own secrets, and the allowed flow variables whose names say secret."""
    own = [settings.whatsapp.token, settings.whatsapp.app_secret, settings.whatsapp.verify_token,
           settings.admin_token, *(environ.get(name, "") for name in SECRET_VARS)]
    named = [environ.get(name, "") for name in settings.bot.env or () if _SECRET_NAME.search(name)]
    return [value for value in [*own, *named] if value]


def template_env(environ: Mapping[str, str], allowed: tuple[str, ...] | None) -> dict[str, str]:
    """The environment as flow templates see it (`{{ env.SHOP_API }}`): only the allowed names, never secrets."""
    names = environ.keys() if allowed is None else allowed
    return {k: environ[k] for k in names if k in environ and k not in SECRET_VARS}


class _Reader:
    """Looks up dotted keys, interpolates `${VAR}`, checks types; every failure names key and file."""

    def __init__(self, raw: dict[str, Any], env: Mapping[str, str], file: str, base: Path) -> None:
        self.raw = raw
        self.env = env
        self.file = file
        self.base = base

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"Setting {key} in {self.file} {what}.", key=key, file=self.file)

    def get(self, key: str, default: Any) -> Any:
        section, _, name = key.partition(".")
        if name not in known_keys().get(section, ()):  # a programming error: every setting has a schema entry
            raise AssertionError(f"setting {key} is read but not declared in {SCHEMA_PATH}")
        node: Any = self.raw
        for part in key.split("."):
            if node is None:
                return default
            if not isinstance(node, dict):
                raise self.fail(key.rsplit(".", 1)[0], "must be a section (a mapping of settings)")
            if part not in node:
                return default
            node = node[part]
        if node is None:
            return default
        return self.interpolate(key, node) if isinstance(node, str) else node

    def interpolate(self, key: str, value: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in self.env and (self.env[name] != "" or default is None):
                return self.env[name]
            if default is not None:
                return default
            raise self.fail(key, f"uses ${{{name}}}, but the environment variable {name} is not set")

        return _VAR.sub(sub, value)

    def secret(self, key: str, file_key: str) -> str:
        """A secret given inline or, when `file_key` names a file, read from it (so SIGHUP can pick up a new one)."""
        path = self.text(file_key, "")
        if not path:
            return self.text(key, "")
        try:
            return (self.base / path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise self.fail(file_key, f"names {path}, which cannot be read ({err.strerror})") from None

    def text(self, key: str, default: str) -> str:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, "must be a text value")
        return str(value).strip()

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}")
        return value

    def words(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(w, str | int) for w in value):
            raise self.fail(key, 'must be a list of words, like ["STOP", "hủy đăng ký"]')
        return tuple(x for x in (self.interpolate(key, str(w)).strip() for w in value) if x)  # ${X:-} may be empty

    def names(self, key: str) -> tuple[str, ...]:
        value = self.get(key, [])
        if not isinstance(value, list) or not all(isinstance(n, str) and _NAME.fullmatch(n) for n in value):
            raise self.fail(key, "must be a list of environment variable names, like [SHOP_API, SHOP_TOKEN]")
        if secret := [n for n in value if n in SECRET_VARS]:
            raise self.fail(key, f"names {', '.join(secret)}, which flows may never read")
        return tuple(value)

    def networks(self, key: str) -> tuple[str, ...]:
        """Addresses or networks (10.0.0.0/8, ::1), each checked."""
        found = self.words(key, ())
        for text in found:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise self.fail(
                    key, f"must list addresses or networks like 10.0.0.1 or 10.0.0.0/8, not {text!r}"
                ) from None
        return found

    def number(
        self, key: str, default: float, *, low: float | None = None, high: float | None = None, integer: bool = False
    ) -> float:
        value = self.get(key, default)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if integer and number != int(number):
                raise ValueError
        except (TypeError, ValueError):
            kind = "a whole number" if integer else "a number"
            raise self.fail(key, f"must be {kind}, not {value!r}") from None
        if low is not None and number < low:
            raise self.fail(key, f"must be at least {low:g}, not {number:g}")
        if high is not None and number > high:
            raise self.fail(key, f"must be at most {high:g}, not {number:g}")
        return number

    def match(self, key: str, default: str, pattern: str, hint: str) -> str:
        value = self.text(key, default)
        if not re.fullmatch(pattern, value):
            raise self.fail(key, f"must be {hint}, not {value!r}")
        return value

    def url(self, key: str, default: str) -> str:
        value = self.text(key, default)
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise self.fail(key, f"must be an http:// or https:// address, not {value!r}")
        return value.rstrip("/")

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key, default)
        found = next((a for a in allowed if a.lower() == value.lower()), None)
        if found is None:
            raise self.fail(key, f"must be one of {', '.join(allowed)}, not {value!r}")
        return found

    def path(self, key: str, default: str) -> Path:
        value = self.text(key, default)
        if not value:
            raise self.fail(key, "must not be empty")
        p = Path(value)
        return p if p.is_absolute() or value == ":memory:" else self.base / p
