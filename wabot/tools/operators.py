"""The operators' commands: `doctor`, `handoff`, `history`, `export`, `apikey`, `campaign`, `db`, `backup` and
`user` (arguments and what each runs; the work itself is in the tools and the layers below)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wabot.tools.args import DEFAULT_CONFIG, settings_of

__all__ = [
    "apikey_arguments", "apikey_command", "backup_arguments", "backup_command", "campaign_arguments",
    "campaign_command", "db_arguments", "db_command", "doctor_command", "export_arguments", "export_command",
    "handoff_arguments", "handoff_command", "history_arguments", "history_command", "user_arguments",
    "user_command",
]


def doctor_command(args: argparse.Namespace) -> int:
    from wabot.tools.doctor import main as doctor  # lazy: only this command needs the Graph client

    return doctor(Path(args.config or DEFAULT_CONFIG))


def handoff_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "show", "reply", "resume"),
                   help="list who waits, show a conversation, reply as the agent, or give it back to the bot")
    p.add_argument("customer", nargs="?", help="the customer's number (wa_id), for show/reply/resume")
    p.add_argument("text", nargs="?", help="the message to send, for reply")


def handoff_command(args: argparse.Namespace) -> int:
    from wabot.tools import desk

    settings = settings_of(args)
    if settings is None:
        return 2
    if args.action == "reply" and not args.text:
        print("wabot: 'handoff reply' needs the customer's number and the text, in quotes.", file=sys.stderr)
        return 2
    return desk.handoff(settings, args.action, args.customer, args.text)


def history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("customer", help="the customer's number in any form: 84912345678, +84 912 345 678, 0912345678, "
                                    "or masked as the log prints it (8491****678)")
    p.add_argument("--limit", type=int, default=50, help="the last N messages (default 50)")


def history_command(args: argparse.Namespace) -> int:
    from wabot.tools import desk

    settings = settings_of(args)
    return 2 if settings is None else desk.history(settings, args.customer, limit=args.limit)


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="write to this file (default: the terminal)")


def export_command(args: argparse.Namespace) -> int:
    from wabot.tools import desk

    settings = settings_of(args)
    return 2 if settings is None else desk.export(settings, args.out)


def apikey_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("create", "list", "revoke"),
                   help="create a key (printed once, alone on the last line), list the keys, or revoke one")
    p.add_argument("name", nargs="?", help="the key's name, for create and revoke (like erp or shop-website)")


def apikey_command(args: argparse.Namespace) -> int:
    from wabot.tools.apikeys import apikey

    settings = settings_of(args)
    return 2 if settings is None else apikey(settings, args.action, args.name)


def campaign_arguments(p: argparse.ArgumentParser) -> None:
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

    settings = settings_of(args)
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


def db_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("copy",), help="copy: move an SQLite file's data into PostgreSQL")
    p.add_argument("source", type=Path, help="the SQLite file (database.path), with wabot stopped")
    p.add_argument("target", help="postgresql://user@host/database, an empty database")


def db_command(args: argparse.Namespace) -> int:
    from wabot.tools import dbcopy

    return dbcopy.copy(args.source, args.target)


def backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="the file to write; it must not exist yet")


def backup_command(args: argparse.Namespace) -> int:
    """A consistent copy of the SQLite database while the server runs: 0 written, 1 not."""
    import sqlite3

    from wabot.db.backup import backup

    settings = settings_of(args)
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


def user_arguments(p: argparse.ArgumentParser) -> None:
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

    settings = settings_of(args)
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

