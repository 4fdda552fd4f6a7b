"""The command line: `wabot run` (the default, here), and the table of every other command.

Each subcommand is a `_Command`: how to set up its arguments and the function that runs it (the authors' commands
in tools/authors.py, the operators' in tools/operators.py); add one to `COMMANDS` to add a subcommand.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wabot import envfile, logs
from wabot.config import BotSettings, Settings, load_settings, secret_values
from wabot.db.lock import InUseError
from wabot.errors import ConfigError
from wabot.flows.load import load_configured
from wabot.flows.model import Bot
from wabot.tools import authors, operators
from wabot.tools.args import DEFAULT_CONFIG

log = logging.getLogger("wabot")


@dataclass(frozen=True, slots=True)
class _Command:
    name: str
    help: str
    handler: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", run_command)
    try:  # the .env beside the settings file, as docker compose reads it; variables already set win
        envfile.load(Path(args.config or DEFAULT_CONFIG).parent / ".env")
    except ConfigError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return 2
    try:
        return handler(args)
    except BrokenPipeError:  # `wabot chat | head`: the reader has had enough, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python exits
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wabot",
        description="A rule-based WhatsApp chatbot: YAML flows in, WhatsApp Cloud API out.",
    )
    parser.add_argument("--config", help=f"settings file (default: ./{DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(p)
        p.set_defaults(handler=command.handler)
    return parser




def load_bot(settings: Settings | BotSettings, path: Path | None = None) -> tuple[Bot, list[str], list[str]]:
    """Load the flows named by the settings (or `path`): (bot, errors, warnings) as printable lines."""
    bot, problems = load_configured(settings.bot if isinstance(settings, Settings) else settings, path)
    errors = [str(p) for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity != "error"]
    return bot, errors, warnings


# --- run -----------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    return run(Path(args.config or DEFAULT_CONFIG))


def run(config: Path) -> int:
    """Start the server; 2 when the settings or the flows are wrong."""
    try:
        settings = load_settings(config)
    except ConfigError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_format, mask_numbers=settings.mask_numbers,
               secrets=secret_values(settings, os.environ))
    bot, errors, warnings = load_bot(settings)
    for line in warnings:
        log.warning("%s", line)
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        print(f"wabot: {len(errors)} problem(s) in the flow files; the server did not start.", file=sys.stderr)
        return 2
    from aiohttp import web

    from wabot import api, console
    from wabot.server.app import create_app

    _raise_file_limit()
    s = settings.server
    log.info("wabot serving %d flows on http://%s:%d%s", len(bot.flows), s.host, s.port, s.webhook_path)
    # what start-up loaded (code, flows, schema) lives for good: keep it out of every garbage collection, so the
    # collector's full passes stay short under load (they showed as latency spikes in the benchmark)
    gc.collect()
    gc.freeze()
    try:
        web.run_app(
            create_app(settings, bot, admin=[api.setup, console.setup]), host=s.host, port=s.port, print=None,
            shutdown_timeout=settings.outbox.shutdown_grace, access_log=None, loop=_event_loop(),
        )
    except InUseError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename == "admin.port":  # the admin listener's own sentence
            print(f"wabot: {err.strerror}.", file=sys.stderr)
        else:
            print(f"wabot: cannot listen on {s.host}:{s.port}: {err.strerror or err}.", file=sys.stderr)
        return 2
    return 0


def _raise_file_limit(wanted: int = 65536) -> None:
    """Each connection is a file: lift the soft limit (1024 under systemd) to the hard one the system allows."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        log.info("open files limit raised from %d to %d (LimitNOFILE= in the systemd unit sets it)", soft, target)


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when the `speed` extra is installed (measurably faster, see bench/README.md), else asyncio's."""
    if os.environ.get("WABOT_UVLOOP", "1") != "0":
        try:  # imported by name: uvloop is optional, and mypy checks the same code with or without it
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            pass
        else:
            log.info("event loop: uvloop")
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


COMMANDS: list[_Command] = [
    _Command("run", "start the server (the default when no command is given)", run_command),
    _Command("validate", "check the flow files and list every problem with its line", authors.validate_command,
             authors.validate_arguments),
    _Command("chat", "talk to the bot in this terminal (or from piped input)", authors.chat_command,
             authors.chat_arguments),
    _Command("test", "run the conversation tests (flows/tests/*.yaml)", authors.test_command,
             authors.test_arguments),
    _Command("graph", "draw the flows as a Mermaid (or Graphviz DOT) diagram", authors.graph_command,
             authors.graph_arguments),
    _Command("doctor", "check the settings, flows, database, Graph API access and the webhook",
             operators.doctor_command),
    _Command("handoff", "the handoff desk: list | show | reply | resume (needs the running server)",
             operators.handoff_command, operators.handoff_arguments),
    _Command("history", "print one customer's conversation with delivery statuses", operators.history_command,
             operators.history_arguments),
    _Command("export", "write every conversation as JSON Lines", operators.export_command,
             operators.export_arguments),
    _Command("apikey", "the business API's keys: create NAME | list | revoke NAME", operators.apikey_command,
             operators.apikey_arguments),
    _Command("campaign", "send a template to a CSV of customers: send | show | pause | resume | cancel",
             operators.campaign_command, operators.campaign_arguments),
    _Command("backup", "copy the database to a new file while the server runs (SQLite's online backup)",
             operators.backup_command, operators.backup_arguments),
    _Command("db", "database tools: copy SQLITE_PATH postgresql://... moves a shop to PostgreSQL",
             operators.db_command, operators.db_arguments),
    _Command("user", "staff accounts of the web console: user add NAME [--role admin|agent]",
             operators.user_command, operators.user_arguments),
]


__all__ = ["COMMANDS", "load_bot", "main", "run"]
