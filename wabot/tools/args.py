"""What the commands share: the settings file named by --config, and the flows a tool runs on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wabot.config import START_WORDS, STOP_WORDS, BotSettings, Settings, load_settings
from wabot.errors import ConfigError
from wabot.flows.load import load_configured
from wabot.flows.model import Bot
from wabot.templates import DEFAULT_TIMEZONE

__all__ = ["DEFAULT_CONFIG", "bot_settings_of", "runnable", "settings_of"]

DEFAULT_CONFIG = "config.yaml"


def settings_of(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(Path(args.config or DEFAULT_CONFIG))
    except ConfigError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return None


def bot_settings_of(args: argparse.Namespace) -> BotSettings | None:
    """The bot settings from the config file; without one (and no --config), the defaults.

    The author tools must work in a folder holding only flows, so a missing config.yaml is fine here.
    """
    if args.config is None and not Path(DEFAULT_CONFIG).exists():
        return BotSettings(flows=Path("flows"), start_flow="main", default_language="vi",
                           session_timeout=30 * 60.0, timezone=DEFAULT_TIMEZONE,
                           stop_words=STOP_WORDS, start_words=START_WORDS)
    settings = settings_of(args)
    return settings.bot if settings else None


def runnable(args: argparse.Namespace, path: Path | None = None) -> Bot | None:
    """The bot to chat with, test or draw; None (errors printed) when its flows have errors."""
    b = bot_settings_of(args)
    if b is None:
        return None
    bot, problems = load_configured(b, path)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        for p in errors:
            print(p, file=sys.stderr)
        print(f"wabot: {len(errors)} error(s) in the flow files; fix them first (wabot validate lists them).",
              file=sys.stderr)
        return None
    return bot

