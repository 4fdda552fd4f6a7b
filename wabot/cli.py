"""The command line: `wabot run` (the default), `wabot validate`, ..."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import logs
from .config import Settings, load_settings, template_env
from .errors import ConfigError, FlowError
from .flows.model import Bot

log = logging.getLogger("wabot")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "run"
    if command == "run":
        return run(Path(args.config))
    if command == "validate":
        return validate(Path(args.config), args.path, strict=args.strict)
    parser.error(f"unknown command {command}")
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wabot",
        description="A rule-based WhatsApp chatbot: YAML flows in, WhatsApp Cloud API out.",
    )
    parser.add_argument("--config", default="config.yaml", help="settings file (default: ./config.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="start the server (the default when no command is given)")
    v = sub.add_parser("validate", help="check the flow files and list every problem with its line")
    v.add_argument("path", nargs="?", help="a flow file or folder (default: bot.flows from the config)")
    v.add_argument("--strict", action="store_true", help="fail on warnings too")
    return parser


def _settings(config: Path) -> Settings | None:
    try:
        return load_settings(config)
    except ConfigError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return None


def load_bot(settings: Settings, path: Path | None = None) -> tuple[Bot, list[str], list[str]]:
    """Load the flows named by the settings (or `path`): (bot, errors, warnings) as printable lines."""
    from .flows.load import load_bot as load

    b = settings.bot
    bot, problems = load(
        [path or b.flows],
        start=b.start_flow,
        default_language=b.default_language,
        session_timeout=b.session_timeout,
        timezone=b.timezone,
        env=template_env(os.environ),
    )
    errors = [str(p) for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity != "error"]
    return bot, errors, warnings


def run(config: Path) -> int:
    settings = _settings(config)
    if settings is None:
        return 2
    logs.setup(settings.log_level, settings.log_format)
    bot, errors, warnings = load_bot(settings)
    for line in warnings:
        log.warning("%s", line)
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        print(f"wabot: {len(errors)} problem(s) in the flow files; the server did not start.", file=sys.stderr)
        return 2
    from aiohttp import web

    from .app import create_app

    s = settings.server
    log.info("wabot serving %d flows on http://%s:%d%s", len(bot.flows), s.host, s.port, s.webhook_path)
    try:
        web.run_app(
            create_app(settings, bot), host=s.host, port=s.port, print=None,
            shutdown_timeout=settings.outbox.shutdown_grace, access_log=None,
        )
    except OSError as err:
        print(f"wabot: cannot listen on {s.host}:{s.port}: {err.strerror or err}.", file=sys.stderr)
        return 2
    return 0


def validate(config: Path, path: str | None, *, strict: bool) -> int:
    settings = _settings(config)
    if settings is None:
        return 2
    try:
        bot, errors, warnings = load_bot(settings, Path(path) if path else None)
    except FlowError as err:
        errors, warnings = [str(p) for p in err.problems], []
    for line in errors + warnings:
        print(line)
    if errors or (strict and warnings):
        print(f"{len(errors)} error(s), {len(warnings)} warning(s).")
        return 1
    print(f"OK: {len(bot.flows)} flows, {len(warnings)} warning(s).")
    return 0
