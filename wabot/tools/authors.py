"""The flow authors' commands: `validate`, `chat`, `test` and `graph` (arguments and what each runs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from wabot.flows.load import load_configured
from wabot.tools.args import bot_settings_of, runnable

__all__ = [
    "chat_arguments", "chat_command", "graph_arguments", "graph_command", "test_arguments", "test_command",
    "validate_arguments", "validate_command",
]


def validate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a flow file or folder (default: bot.flows from the config)")
    p.add_argument("--flows", dest="flows_path", help="the same as PATH (the name test and graph use)")
    p.add_argument("--strict", action="store_true", help="fail on warnings too")


def validate_command(args: argparse.Namespace) -> int:
    """Print every problem as `file:line: flow/step: what — fix`; 0 when clean, 1 when not."""
    b = bot_settings_of(args)
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


def chat_arguments(p: argparse.ArgumentParser) -> None:
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
    bot = runnable(args, Path(path) if path else None)
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


def test_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a test file or folder (default: the tests folder next to the flows)")
    p.add_argument("--flows", type=Path, help="the flow file or folder to test (default: bot.flows from the config)")


def test_command(args: argparse.Namespace) -> int:
    """Run conversation tests; 0 when all pass, 1 when any fails or a file cannot be read."""
    from wabot.tools.scenarios import test_files
    from wabot.tools.testrun import run_files

    b = bot_settings_of(args)
    if b is None:
        return 2
    bot = runnable(args, args.flows)
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


def graph_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow", nargs="?", help="draw only this flow (default: all)")
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="mermaid (default) or dot")
    p.add_argument("--flows", type=Path, help="the flow file or folder (default: bot.flows from the config)")


def graph_command(args: argparse.Namespace) -> int:
    from wabot.tools import diagram

    bot = runnable(args, args.flows)
    if bot is None:
        return 1
    if args.flow and args.flow not in bot.flows:
        print(f"wabot: there is no flow named {args.flow!r}; the flows are: {', '.join(bot.flows)}.",
              file=sys.stderr)
        return 1
    draw = diagram.dot if args.format == "dot" else diagram.mermaid
    sys.stdout.write(draw(bot, flow=args.flow))
    return 0
