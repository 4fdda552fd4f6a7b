"""The command line: `wabot run` (the default), `validate`, `chat`, `test`, `graph`, `doctor`, `handoff`, ...

Each subcommand is a `_Command`: how to set up its arguments and the function that runs it;
add one to `COMMANDS` to add a subcommand.
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
from wabot.config import START_WORDS, STOP_WORDS, BotSettings, Settings, load_settings, secret_values
from wabot.db.lock import InUseError
from wabot.errors import ConfigError
from wabot.flows.load import load_configured
from wabot.flows.model import Bot
from wabot.templates import DEFAULT_TIMEZONE

log = logging.getLogger("wabot")

DEFAULT_CONFIG = "config.yaml"


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


# --- settings and flows --------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(Path(args.config or DEFAULT_CONFIG))
    except ConfigError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return None


def _bot_settings(args: argparse.Namespace) -> BotSettings | None:
    """The bot settings from the config file; without one (and no --config), the defaults.

    The author tools must work in a folder holding only flows, so a missing config.yaml is fine here.
    """
    if args.config is None and not Path(DEFAULT_CONFIG).exists():
        return BotSettings(flows=Path("flows"), start_flow="main", default_language="vi",
                           session_timeout=30 * 60.0, timezone=DEFAULT_TIMEZONE,
                           stop_words=STOP_WORDS, start_words=START_WORDS)
    settings = _settings(args)
    return settings.bot if settings else None


def load_bot(settings: Settings | BotSettings, path: Path | None = None) -> tuple[Bot, list[str], list[str]]:
    """Load the flows named by the settings (or `path`): (bot, errors, warnings) as printable lines."""
    bot, problems = load_configured(settings.bot if isinstance(settings, Settings) else settings, path)
    errors = [str(p) for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity != "error"]
    return bot, errors, warnings


def _runnable(args: argparse.Namespace, path: Path | None = None) -> Bot | None:
    """The bot to chat with, test or draw; None (errors printed) when its flows have errors."""
    b = _bot_settings(args)
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


# --- validate ------------------------------------------------------------------------------------


def _validate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a flow file or folder (default: bot.flows from the config)")
    p.add_argument("--flows", dest="flows_path", help="the same as PATH (the name test and graph use)")
    p.add_argument("--strict", action="store_true", help="fail on warnings too")


def validate_command(args: argparse.Namespace) -> int:
    """Print every problem as `file:line: flow/step: what — fix`; 0 when clean, 1 when not."""
    b = _bot_settings(args)
    if b is None:
        return 2
    path = args.path or args.flows_path
    bot, problems = load_configured(b, Path(path) if path else None)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    for p in problems:
        print(p)
    if errors or (args.strict and warnings):
        print(f"{len(errors)} error(s), {len(warnings)} warning(s).")
        return 1
    print(f"OK: {len(bot.flows)} flows, {len(warnings)} warning(s).")
    return 0


# --- chat ----------------------------------------------------------------------------------------


def _chat_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a flow file or folder (default: bot.flows from the config)")
    p.add_argument("--flows", dest="flows_path", help="the same as PATH (the name test and graph use)")
    p.add_argument("--name", default="Khách", help="the customer's name (default: Khách)")
    p.add_argument("--wa-id", default="84900000000", help="the customer's phone number, digits only")
    p.add_argument("--db", type=Path, help="keep the conversation in this SQLite file (default: a throw-away one)")
    p.add_argument("--offline", action="store_true", help="make http steps fail instead of sending requests")
    p.add_argument("--echo", action="store_true", help="repeat each input line (for transcripts of piped input)")


def chat_command(args: argparse.Namespace) -> int:
    from wabot.tools.chat import Options, chat

    path = args.path or args.flows_path
    bot = _runnable(args, Path(path) if path else None)
    if bot is None:
        return 1
    # warnings (a text that cannot be rendered, a failed http step) help authors; they go to stderr
    logging.basicConfig(level=logging.WARNING, format="(%(levelname)s %(name)s: %(message)s)")
    options = Options(name=args.name, wa_id=args.wa_id, db=args.db, offline=args.offline, echo=args.echo)
    try:
        return asyncio.run(chat(bot, sys.stdin, sys.stdout, options=options, interactive=sys.stdin.isatty()))
    except KeyboardInterrupt:
        print()
        return 0


# --- test ----------------------------------------------------------------------------------------


def _test_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a test file or folder (default: the tests folder next to the flows)")
    p.add_argument("--flows", type=Path, help="the flow file or folder to test (default: bot.flows from the config)")


def test_command(args: argparse.Namespace) -> int:
    """Run conversation tests; 0 when all pass, 1 when any fails or a file cannot be read."""
    from wabot.tools.scenarios import test_files
    from wabot.tools.testrun import run_files

    b = _bot_settings(args)
    if b is None:
        return 2
    bot = _runnable(args, args.flows)
    if bot is None:
        return 1
    tests = Path(args.path) if args.path else (args.flows or b.flows) / "tests"
    logging.basicConfig(level=logging.ERROR, format="(%(levelname)s %(name)s: %(message)s)")
    files = test_files(tests) if tests.exists() else []
    if not files:
        print(f"wabot: no test files in {tests} (conversation tests are .yaml files; see docs/testing.md).",
              file=sys.stderr)
        return 1
    return asyncio.run(run_files(bot, files, sys.stdout))


# --- graph ---------------------------------------------------------------------------------------


def _graph_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow", nargs="?", help="draw only this flow (default: all)")
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="mermaid (default) or dot")
    p.add_argument("--flows", type=Path, help="the flow file or folder (default: bot.flows from the config)")


def graph_command(args: argparse.Namespace) -> int:
    from wabot.tools import diagram

    bot = _runnable(args, args.flows)
    if bot is None:
        return 1
    if args.flow and args.flow not in bot.flows:
        print(f"wabot: there is no flow named {args.flow!r}; the flows are: {', '.join(bot.flows)}.",
              file=sys.stderr)
        return 1
    draw = diagram.dot if args.format == "dot" else diagram.mermaid
    sys.stdout.write(draw(bot, flow=args.flow))
    return 0


# --- operations ----------------------------------------------------------------------------------


def doctor_command(args: argparse.Namespace) -> int:
    from wabot.tools.doctor import main as doctor  # lazy: only this command needs the Graph client

    return doctor(Path(args.config or DEFAULT_CONFIG))


def _handoff_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "show", "reply", "resume"),
                   help="list who waits, show a conversation, reply as the agent, or give it back to the bot")
    p.add_argument("customer", nargs="?", help="the customer's number (wa_id), for show/reply/resume")
    p.add_argument("text", nargs="?", help="the message to send, for reply")


def handoff_command(args: argparse.Namespace) -> int:
    from wabot.tools import desk

    settings = _settings(args)
    if settings is None:
        return 2
    if args.action == "reply" and not args.text:
        print("wabot: 'handoff reply' needs the customer's number and the text, in quotes.", file=sys.stderr)
        return 2
    return desk.handoff(settings, args.action, args.customer, args.text)


def _history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("customer", help="the customer's number in any form: 84912345678, +84 912 345 678, 0912345678, "
                                    "or masked as the log prints it (8491****678)")
    p.add_argument("--limit", type=int, default=50, help="the last N messages (default 50)")


def history_command(args: argparse.Namespace) -> int:
    from wabot.tools import desk

    settings = _settings(args)
    return 2 if settings is None else desk.history(settings, args.customer, limit=args.limit)


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="write to this file (default: the terminal)")


def export_command(args: argparse.Namespace) -> int:
    from wabot.tools import desk

    settings = _settings(args)
    return 2 if settings is None else desk.export(settings, args.out)


def _apikey_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("create", "list", "revoke"),
                   help="create a key (printed once, alone on the last line), list the keys, or revoke one")
    p.add_argument("name", nargs="?", help="the key's name, for create and revoke (like erp or shop-website)")


def apikey_command(args: argparse.Namespace) -> int:
    from wabot.tools.apikeys import apikey

    settings = _settings(args)
    return 2 if settings is None else apikey(settings, args.action, args.name)


def _campaign_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("send", "show", "pause", "resume", "cancel"),
                   help="send a template to a CSV of customers, show a campaign's report, pause, resume or cancel it")
    p.add_argument("id", nargs="?", type=int, help="the campaign's number, for show/pause/resume/cancel")
    p.add_argument("--template", help="send: the approved template's name")
    p.add_argument("--language", help="send: the template's language code (default: bot.default_language)")
    p.add_argument("--to", type=Path, help="send: a CSV file; column 'to' holds the numbers, the other columns are "
                   "the template's body parameters in order")
    p.add_argument("--name", default="", help="send: a name for the report (default: the file's name)")
    p.add_argument("--no-wait", action="store_true", help="send: do not follow the campaign with a progress bar")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="show: the report's format")


def campaign_command(args: argparse.Namespace) -> int:
    from wabot.tools import campaign

    settings = _settings(args)
    if settings is None:
        return 2
    if args.action == "send":
        if not args.template or not args.to:
            print("wabot: 'campaign send' needs --template NAME and --to customers.csv.", file=sys.stderr)
            return 2
        return campaign.send(settings, template=args.template, language=args.language or settings.bot.default_language,
                             path=args.to, name=args.name, wait=not args.no_wait)
    if args.id is None:
        print(f"wabot: 'campaign {args.action}' needs the campaign's number.", file=sys.stderr)
        return 2
    if args.action == "show":
        return campaign.show(settings, args.id, form=args.format)
    return campaign.switch(settings, args.id, args.action)


def _db_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("copy",), help="copy: move an SQLite file's data into PostgreSQL")
    p.add_argument("source", type=Path, help="the SQLite file (database.path), with wabot stopped")
    p.add_argument("target", help="postgresql://user@host/database, an empty database")


def db_command(args: argparse.Namespace) -> int:
    from wabot.tools import dbcopy

    return dbcopy.copy(args.source, args.target)


def _backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="the file to write; it must not exist yet")


def backup_command(args: argparse.Namespace) -> int:
    """A consistent copy of the SQLite database while the server runs: 0 written, 1 not."""
    import sqlite3

    from wabot.db.backup import backup

    settings = _settings(args)
    if settings is None:
        return 2
    if settings.database_url:
        print("wabot: the database is PostgreSQL (database.url); back it up with pg_dump, for example: "
              'pg_dump --format=custom --file=wabot.dump "$WABOT_DATABASE_URL".', file=sys.stderr)
        return 1
    try:
        size = backup(settings.database, args.path)
    except (FileNotFoundError, FileExistsError, PermissionError) as err:
        print(f"wabot: no backup: {err}.", file=sys.stderr)
        return 1
    except (sqlite3.Error, OSError) as err:
        print(f"wabot: the backup of {settings.database} failed: {err}.", file=sys.stderr)
        return 1
    print(f"{settings.database} copied to {args.path} ({size / 2**20:.1f} MB), consistent as of now.")
    return 0


def _user_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("add",), help="add an account (or set a new password for one)")
    p.add_argument("name", help="the name to sign in with, like lan")
    p.add_argument("--role", choices=("admin", "agent"), default="agent",
                   help="admin: also exports customers' data; agent (default): answers customers")


def user_command(args: argparse.Namespace) -> int:
    """`wabot user add NAME`: the password is asked at a terminal, or read as one line from standard input."""
    import asyncio
    import getpass

    from wabot.console import accounts
    from wabot.db import pgsql
    from wabot.db.base import DB_ERRORS
    from wabot.errors import DatabaseError

    settings = _settings(args)
    if settings is None:
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("The same password again: ") != password:
            print("wabot: the two passwords differ; nothing changed.", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = accounts.problem(args.name, password)
    if problem:
        print(f"wabot: {problem} Nothing changed.", file=sys.stderr)
        return 1
    try:
        new = asyncio.run(accounts.add_user(settings.database_target, args.name, password, args.role))
    except DatabaseError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return 2
    except DB_ERRORS as err:
        print(f"wabot: cannot write the account to the database {pgsql.shown(settings.database_target)}: {err}.",
              file=sys.stderr)
        return 2
    admin = f"http://{settings.admin_host}:{settings.admin_port}/console/"
    print(f"{'Added' if new else 'Updated'} {args.role} account {args.name!r}. Sign in at {admin} "
          "(the server must be running; see docs/console.md to reach it from another machine).")
    return 0


COMMANDS: list[_Command] = [
    _Command("run", "start the server (the default when no command is given)", run_command),
    _Command("validate", "check the flow files and list every problem with its line", validate_command,
             _validate_arguments),
    _Command("chat", "talk to the bot in this terminal (or from piped input)", chat_command, _chat_arguments),
    _Command("test", "run the conversation tests (flows/tests/*.yaml)", test_command, _test_arguments),
    _Command("graph", "draw the flows as a Mermaid (or Graphviz DOT) diagram", graph_command, _graph_arguments),
    _Command("doctor", "check the settings, flows, database, Graph API access and the webhook", doctor_command),
    _Command("handoff", "the handoff desk: list | show | reply | resume (needs the running server)",
             handoff_command, _handoff_arguments),
    _Command("history", "print one customer's conversation with delivery statuses", history_command,
             _history_arguments),
    _Command("export", "write every conversation as JSON Lines", export_command, _export_arguments),
    _Command("apikey", "the business API's keys: create NAME | list | revoke NAME", apikey_command,
             _apikey_arguments),
    _Command("campaign", "send a template to a CSV of customers: send | show | pause | resume | cancel",
             campaign_command, _campaign_arguments),
    _Command("backup", "copy the database to a new file while the server runs (SQLite's online backup)",
             backup_command, _backup_arguments),
    _Command("db", "database tools: copy SQLITE_PATH postgresql://... moves a shop to PostgreSQL", db_command,
             _db_arguments),
    _Command("user", "staff accounts of the web console: user add NAME [--role admin|agent]", user_command,
             _user_arguments),
]


__all__ = ["COMMANDS", "load_bot", "main", "run"]
