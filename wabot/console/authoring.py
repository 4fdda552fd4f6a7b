"""For flow authors: the flows with their problems and diagrams, and a simulator on a throw-away conversation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aiohttp import web

from wabot.console.pages import PREFIX, render, staff
from wabot.engine import advance
from wabot.flows import diagram
from wabot.flows.load import load_configured
from wabot.server.effects import perform, real_http
from wabot.server.keys import DISPATCHER, SETTINGS
from wabot.state import HANDOFF, State
from wabot.templates import Renderer
from wabot.whatsapp import inbound, outbound

__all__ = ["SIMULATIONS", "add_routes"]

# a simulated conversation per signed-in session: its state lives only here and is gone on restart
SIMULATIONS = web.AppKey("console_simulations", dict)
FLOWS_READ = web.AppKey("console_flows_read", dict)  # the flows page's last reading of the flow files
SIM_CUSTOMER = inbound.Customer("84900000000", name="Khách thử")


def add_routes(app: web.Application) -> None:
    app[SIMULATIONS] = {}
    app[FLOWS_READ] = {}
    app.router.add_get(f"{PREFIX}/flows", flows_page)
    app.router.add_get(f"{PREFIX}/simulator", simulator_page)
    app.router.add_post(f"{PREFIX}/simulator.json", simulate)


async def flows_page(request: web.Request) -> web.Response:
    """The flow files as `wabot validate` reads them now, with each flow drawn as `wabot graph` draws it."""
    settings = request.app[SETTINGS].bot
    seen = _fingerprint(settings.flows)
    cached: tuple[Fingerprint, Drawn] | None = request.app[FLOWS_READ].get("last")
    if cached is None or cached[0] != seen:  # read and draw again only when a flow file changed
        bot, found = load_configured(settings)
        cached = (seen, ([(p.severity, str(p)) for p in found], [(n, diagram.mermaid(bot, flow=n)) for n in bot.flows]))
        request.app[FLOWS_READ]["last"] = cached
    problems, drawings = cached[1]
    return render(request, "flows.html", page="flows", problems=problems, drawings=drawings)


Fingerprint = tuple[tuple[str, int, int], ...]
Drawn = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def _fingerprint(path: Path) -> Fingerprint:
    """Every flow file with its modification time and size: a change to any of them shows."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
    out = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        out.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


async def simulator_page(request: web.Request) -> web.Response:
    return render(request, "simulator.html", page="simulator")


async def simulate(request: web.Request) -> web.Response:
    """One customer message (text or tap) to the simulated conversation; the bot's replies as values to draw."""
    try:
        said = await request.json()
    except ValueError:
        said = None
    if not isinstance(said, dict):
        return web.json_response({"error": 'The body must be JSON like {"text": "Xin chào"}.'}, status=400)
    key = staff(request).token
    sims: dict[str, State | None] = request.app[SIMULATIONS]
    if said.get("restart"):
        sims.pop(key, None)
        return web.json_response({"messages": [], "state": _state(None)})
    dispatcher = request.app[DISPATCHER]
    bot, now = dispatcher.bot, time.time()
    renderer = Renderer(timezone=bot.timezone)
    event: advance.Event
    if said.get("resume"):
        event = advance.Resume()
    else:
        tap, text = said.get("tap"), str(said.get("text", ""))
        content: inbound.Content
        if isinstance(tap, dict) and tap.get("id"):
            content = inbound.Reply(str(tap.get("kind", "button_reply")), str(tap["id"]), str(tap.get("title", "")))
        elif text.strip():
            content = inbound.Text(text)
        else:
            return web.json_response({"error": "Write something or tap a button."}, status=400)
        event = advance.Incoming(inbound.Message(
            id=f"wamid.sim.{now}", customer=SIM_CUSTOMER, phone_number_id="simulator", timestamp=int(now),
            type="text" if isinstance(content, inbound.Text) else "interactive", content=content))

    def step(state: State | None, event: advance.Event) -> advance.Outcome:
        return advance.advance(bot, renderer, state, event, customer=SIM_CUSTOMER, now=now)

    live = bool(said.get("live"))

    async def http(call: advance.HttpCall) -> advance.HttpResult:
        if live:
            return await real_http(dispatcher.http, call)
        return advance.HttpResult(False, error="offline: the simulator does not call web services")

    done = await perform(step(sims.get(key), event), step=step, http=http)
    sims[key] = done.state
    return web.json_response({
        "messages": [_drawn(r) for r in done.replies],
        "handoff": done.handoff, "calls": [f"{c.method} {c.url}" for c in done.calls], "state": _state(done.state),
    })


def _state(state: State | None) -> dict[str, Any]:
    if state is None:
        return {"flow": "", "step": "", "status": "idle", "vars": {}}
    return {"flow": state.flow, "step": state.step, "status": state.status, "vars": dict(state.vars),
            "handoff": state.status == HANDOFF}


def _drawn(reply: outbound.Outgoing) -> dict[str, Any]:
    """A reply as the page draws it, the way WhatsApp shows it."""
    if isinstance(reply, outbound.Text):
        return {"kind": "text", "text": reply.body}
    if isinstance(reply, outbound.Buttons):
        return {"kind": "buttons", "text": reply.body, "header": reply.header, "footer": reply.footer,
                "buttons": [{"id": b.id, "title": b.title} for b in reply.buttons]}
    if isinstance(reply, outbound.ListMessage):
        return {"kind": "list", "text": reply.body, "header": reply.header, "footer": reply.footer,
                "button": reply.button,
                "sections": [{"title": s.title, "rows": [{"id": r.id, "title": r.title, "description": r.description}
                                                         for r in s.rows]} for s in reply.sections]}
    if isinstance(reply, outbound.CtaUrl):
        return {"kind": "cta", "text": reply.body, "display": reply.display_text, "url": reply.url}
    if isinstance(reply, outbound.Media):
        return {"kind": "media", "media": reply.kind, "link": reply.link or "", "text": reply.caption or ""}
    if isinstance(reply, outbound.Template):
        return {"kind": "text", "text": f"[template {reply.name}]"}
    if isinstance(reply, outbound.Location):
        return {"kind": "text", "text": f"📍 {reply.name or ''} {reply.latitude},{reply.longitude}"}
    return {"kind": "text", "text": f"[{type(reply).__name__}]"}
