"""wabot's tests: one folder per package of wabot/, shared fakes beside them, fixtures under data/."""

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from wabot.config import BotSettings, load_settings
from wabot.errors import FlowError, Problem
from wabot.flows.load import load_configured
from wabot.flows.model import Bot

ROOT = Path(__file__).resolve().parent.parent  # the repository
DEMO = ROOT / "flows"  # the shipped demo shop
DATA = Path(__file__).resolve().parent / "data"
PAYLOADS = DATA / "payloads"  # Meta's, pywa's and our webhook samples, Meta's message schema
FIXTURES = DATA / "flows"  # flow files made to be broken or odd


def bot_settings(flows: Path = DEMO, **changes: Any) -> BotSettings:
    """The bot settings of a config.yaml that says nothing (config.py's defaults), reading `flows`.

    `env` is None (no allow-list): the flows see the whole `environ` a test hands them, secrets removed;
    `desk` is True: a person can answer handoffs, as the tests of flows assume.
    """
    return replace(load_settings(Path(os.devnull), environ={}).bot, flows=flows,
                   **{"env": None, "desk": True, **changes})


def load_flows(
    *paths: Path, environ: Mapping[str, str] | None = None, **changes: Any
) -> tuple[Bot, list[Problem]]:
    """The bot from `paths` (default: the demo shop) the way the server loads it from its settings."""
    return load_configured(bot_settings(**changes), paths or None, environ=environ or {})


def configured_bot(settings: BotSettings, *, environ: Mapping[str, str] | None = None) -> Bot:
    """The bot the server loads from `settings`; FlowError listing the problems if its flows have errors."""
    bot, problems = load_configured(settings, environ=environ or {})
    if any(p.severity == "error" for p in problems):
        raise FlowError(problems)
    return bot


def demo_bot() -> Bot:
    """The demo shop's bot."""
    return configured_bot(bot_settings())
