"""`wabot doctor`: check the settings, flows, database, Graph API access and webhook, and say how to fix each."""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TextIO

import aiohttp
from aiohttp import web

from wabot.config import Settings, load_settings
from wabot.db import lock
from wabot.db.base import DB_ERRORS, open_database
from wabot.db.pgsql import shown
from wabot.errors import ConfigError, DatabaseError, GraphError
from wabot.flows.load import load_configured
from wabot.flows.model import Handoff
from wabot.server import webhook
from wabot.server.keys import SETTINGS
from wabot.whatsapp.graph import INVALID_PARAMETER, PERMISSION_CODES, TOKEN_CODES, UNKNOWN_OBJECT, GraphClient

Status = Literal["ok", "warn", "FAIL"]
OK: Final = "ok"
WARN: Final = "warn"
FAIL: Final = "FAIL"
LOCAL_TIMEOUT = 5.0  # seconds for the local webhook to answer


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check, in plain words; `fix` says what to do when it is not ok."""

    status: Status
    what: str
    fix: str = ""

    def __str__(self) -> str:
        fix = f"  → {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:<4} {self.what}{fix}"


def main(config: Path, *, out: TextIO | None = None) -> int:
    """Run every check and print one line each: 0 all well, 1 something failed, 2 the settings cannot be read."""
    stream = out or sys.stdout
    try:
        settings = load_settings(config)
    except ConfigError as err:
        print(Check(FAIL, f"settings: {err}", "fix the setting named above and run `wabot doctor` again"),
              file=stream)
        return 2
    print(Check(OK, f"settings read from {config}"), file=stream)
    return asyncio.run(report(settings, stream))


async def report(settings: Settings, out: TextIO) -> int:
    """Run the checks that follow the settings, printing each as it ends: 0 when none failed, else 1."""
    failed = False
    for step in (flows, database, graph, verification):
        check = await step(settings)
        print(check, file=out, flush=True)
        failed = failed or check.status == FAIL
    return 1 if failed else 0


async def flows(settings: Settings) -> Check:
    bot, problems = load_configured(settings.bot)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    if errors:
        return Check(FAIL, f"flows: {len(errors)} error(s) in {settings.bot.flows}",
                     "run `wabot validate` to see each one with its file and line, and fix them")
    note = f", {len(warnings)} warning(s) (see `wabot validate`)" if warnings else ""
    if not settings.bot.desk and any(isinstance(s.action, Handoff) for f in bot.flows.values() for s in f.steps):
        return Check(WARN, f"flows: {len(bot.flows)} loaded from {settings.bot.flows}{note}; they hand customers "
                     f"to a person, but the handoff desk is off, so nobody can answer them",
                     "set WABOT_ADMIN_TOKEN (admin.token) and answer with `wabot handoff`; meanwhile a handoff "
                     f"ends by itself after {settings.bot.handoff_timeout / 60:g} minutes "
                     "(bot.handoff_timeout_minutes)")
    return Check(OK, f"flows: {len(bot.flows)} loaded from {settings.bot.flows}{note}")


async def database(settings: Settings) -> Check:
    path = shown(settings.database_target)
    errors: tuple[type[BaseException], ...] = (*DB_ERRORS, DatabaseError, ValueError)
    try:
        store = await open_database(settings.database_target)
        try:
            await store.count_status("handoff")
        finally:
            await store.close()
    except errors as exc:
        return Check(FAIL, f"database {path} cannot be used: {exc}",
                     "check that its folder exists and is writable and that the disk is not full "
                     "(setting database.path or database.url)")
    return Check(OK, f"database {path} opens and answers")


async def graph(settings: Settings) -> Check:
    wa = settings.whatsapp
    if wa.dry_run:
        missing = " and ".join(n for n, v in (("WHATSAPP_TOKEN", wa.token),
                                              ("WHATSAPP_PHONE_NUMBER_ID", wa.phone_number_id)) if not v)
        return Check(WARN, f"WhatsApp: dry-run mode, replies are only written to the log ({missing} not set)",
                     f"to go live set {missing} (Meta App Dashboard > WhatsApp > API Setup) "
                     "and WHATSAPP_APP_SECRET")
    where = f"{wa.api_url}/{wa.api_version}"
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, base_url=wa.api_url, version=wa.api_version,
                             phone_number_id=wa.phone_number_id, token=wa.token, timeout=wa.timeout)
        try:
            info = await client.check()
        except GraphError as err:
            return graph_failure(err, settings)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return unreachable(where, exc)
    name = info.get("verified_name") or info.get("display_phone_number") or wa.phone_number_id
    number = info.get("display_phone_number")
    shown = f"{name} ({number})" if number and number != name else str(name)
    return Check(OK, f"Graph API at {where}: the token works for phone number id {wa.phone_number_id}, {shown}")


def graph_failure(err: GraphError, settings: Settings) -> Check:
    """Meta's error -> what it means for the operator and what to do."""
    wa = settings.whatsapp
    code = f" (error {err.code})" if err.code is not None else ""
    if err.code in TOKEN_CODES or (err.auth and err.code not in PERMISSION_CODES):
        return Check(FAIL, f"Graph API: the access token is invalid or has expired{code}",
                     "create a new token (a System User token does not expire: Meta Business Settings > "
                     "System users > Generate token), set WHATSAPP_TOKEN and restart wabot, "
                     "or write it to the WHATSAPP_TOKEN_FILE file and send wabot SIGHUP")
    if err.code in PERMISSION_CODES:
        return Check(FAIL, f"Graph API: the token lacks a permission{code}: {err}",
                     "generate the token again with the whatsapp_business_messaging and "
                     "whatsapp_business_management permissions, for the WhatsApp account of this number")
    if err.code == INVALID_PARAMETER and (err.subcode == UNKNOWN_OBJECT or "does not exist" in str(err)):
        return Check(FAIL, f"Graph API: phone number id {wa.phone_number_id} was not found{code}",
                     "copy the Phone number ID (a long number, not the phone number itself nor the WhatsApp "
                     "Business Account ID) from Meta App Dashboard > WhatsApp > API Setup into "
                     "WHATSAPP_PHONE_NUMBER_ID")
    if err.status == 0 or (err.retryable and err.code is None):
        return unreachable(f"{wa.api_url}/{wa.api_version}", err)
    return Check(FAIL, f"Graph API refused the check{code}: {err}",
                 "look the code up in Meta's list: developers.facebook.com/documentation/business-messaging/"
                 "whatsapp/support/error-codes"
                 if err.code is not None else "try again in a minute; if it persists, check Meta's status page")


def unreachable(where: str, exc: BaseException) -> Check:
    reason = str(exc) or type(exc).__name__
    return Check(FAIL, f"Graph API at {where} cannot be reached: {reason}",
                 "check this machine's internet connection, DNS and firewall (outgoing HTTPS), "
                 "and the whatsapp.api_url setting")


async def verification(settings: Settings) -> Check:
    """Meta's GET challenge, against the running server if there is one, else a temporary one.

    The temporary server serves only the verification route with the same settings: starting the whole
    app would start the sender, and a check must never deliver the replies waiting in the outbox.
    """
    s = settings.server
    if not settings.whatsapp.verify_token:  # in dry-run nothing talks to Meta yet: a warning, not a failure
        return Check(WARN if settings.whatsapp.dry_run else FAIL,
                     "webhook: WHATSAPP_VERIFY_TOKEN is not set, so Meta cannot verify the webhook",
                     "set it to a random text and enter the same text as Verify token in "
                     "Meta App Dashboard > WhatsApp > Configuration")
    host = "127.0.0.1" if s.host in ("", "0.0.0.0", "::") else s.host
    if s.port and await _listening(host, s.port):
        stranger = await _not_this_wabot(settings, f"http://{host}:{s.port}")
        return stranger or await _challenge(settings, f"http://{host}:{s.port}", running=True)
    app = web.Application()
    app[SETTINGS] = settings
    app.router.add_get(s.webhook_path, webhook.verify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        port = runner.addresses[0][1]
        return await _challenge(settings, f"http://127.0.0.1:{port}", running=False)
    finally:
        await runner.cleanup()


async def _challenge(settings: Settings, base: str, *, running: bool) -> Check:
    path = settings.server.webhook_path
    challenge = str(secrets.randbelow(10**10))
    query = {"hub.mode": "subscribe", "hub.verify_token": settings.whatsapp.verify_token, "hub.challenge": challenge}
    where = f"the running server at {base}{path}" if running else (
        f"a temporary server (wabot is not running on port {settings.server.port})"
    )
    try:
        async with aiohttp.ClientSession() as session, session.get(
            base + path, params=query, timeout=aiohttp.ClientTimeout(total=LOCAL_TIMEOUT)
        ) as resp:
            text = await resp.text()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__  # a bare TimeoutError says nothing by itself
        return Check(FAIL, f"webhook: {where} did not answer the verification request: {reason}",
                     "check the log of the running wabot, or stop whatever else listens on that port")
    if status == 200 and text == challenge:
        return Check(OK, f"webhook: {where} answers Meta's verification challenge")
    if status == 404:
        return Check(FAIL, f"webhook: {where} has no page at {path} (answered 404)",
                     "make server.webhook_path match the running server, or restart wabot")
    if status == 403 and running:
        return Check(FAIL, f"webhook: {where} refused the verify token from the settings",
                     "the server was started with another WHATSAPP_VERIFY_TOKEN: restart wabot")
    return Check(FAIL, f"webhook: {where} answered {status} instead of the challenge",
                 "make sure it is wabot that listens on server.port, and look at its log")


async def _not_this_wabot(settings: Settings, base: str) -> Check | None:
    """None when the server at `base` is the wabot serving this database; else what it is, as a failure."""
    port = settings.server.port
    try:
        async with aiohttp.ClientSession() as session, session.get(
            f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=LOCAL_TIMEOUT)
        ) as resp:
            body = await resp.json(content_type=None)
    except ValueError:  # it answered, but not with JSON
        body = None
    except (aiohttp.ClientError, TimeoutError):  # no answer at all: the challenge below says so
        return None
    if not isinstance(body, dict) or body.get("service") != "wabot":
        return Check(FAIL, f"webhook: something listens on port {port}, but it is not wabot "
                           f"(its /healthz does not answer as wabot does)",
                     "stop the other program, or give wabot another server.port (WABOT_PORT)")
    if settings.database_url:  # PostgreSQL: several instances may share it, and there is no lock file
        return None
    holder = lock.holder_of(settings.database)
    if holder is None or holder.get("pid") != body.get("pid"):
        serving = f"process {holder.get('pid')}" if holder else "no running wabot"
        return Check(FAIL, f"webhook: the wabot on port {port} (process {body.get('pid')}) does not serve the "
                           f"database {settings.database} of these settings ({serving} does)",
                     "run doctor with the settings of that server (--config), or stop it and start this one")
    return None


async def _listening(host: str, port: int) -> bool:
    """Something accepts connections at host:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), LOCAL_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True
