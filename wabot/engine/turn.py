"""One turn of a conversation: a mutable working copy of the State that runs steps.

`engine.advance` makes a Turn, feeds it the event and returns `turn.outcome()`; nothing
here does I/O. Steps run in a loop (never by recursion), at most MAX_STEPS per turn.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from wabot.engine import answers, menus, schedule
from wabot.engine.events import Effect, Fetched, HandoffOpened, HttpCall, HttpResult
from wabot.engine.render import Writer, plain
from wabot.flows import model
from wabot.flows.model import Flow, Jump, Step
from wabot.state import HANDOFF, HTTP, IDLE, WAITING, CancelTimers, Frame, SetTimer, State
from wabot.templates import Renderer
from wabot.whatsapp import inbound, outbound

log = logging.getLogger(__name__)

MAX_STEPS = 100  # steps per turn without waiting for the customer: more means a goto loop
MAX_REPLIES_AFTER_LOOP = 10
KEPT_ON_END = ("lang",)  # variables that survive the end of a conversation

Position = tuple[Flow, int]


class _Stop:
    """A step's answer meaning: stop running, the turn is over (waiting, effect or end)."""


STOP = _Stop()
MENU_DEFAULTS = model.Menu(text={}, options=())  # the default list button and "next page" labels
NOTHING_TO_CHOOSE = (
    model.TextSpec({"vi": "Hiện chưa có lựa chọn nào.", "en": "There is nothing to choose from right now."}),
)


class Turn:
    """Runs steps from a state; `outcome()` is the new state plus replies and effects."""

    def __init__(
        self,
        bot: model.Bot,
        renderer: Renderer,
        state: State,
        *,
        customer: inbound.Customer,
        now: float,
        message: inbound.Message | None = None,
    ) -> None:
        self.bot = bot
        self.now = now
        self.flow, self.step, self.status = state.flow, state.step, state.status
        self.vars: dict[str, Any] = dict(state.vars)
        self.stack = list(state.stack)
        self.attempts, self.misses, self.page = state.attempts, state.misses, state.page
        self.handoff_at = state.handoff_at
        self.replies: list[outbound.Outgoing] = []
        self.effects: list[Effect] = []
        self.finished: list[tuple[str, dict[str, Any]]] = []  # flows that ended, with their variables (events)
        self.steps_run = 0
        self.fetched: Fetched | None = None  # the file the customer's message carries, as the server found it
        moment = renderer.now(now)
        self.today: date = moment.date()
        fixed = {
            "contact": {"name": customer.name or "", "wa_id": customer.wa_id or "", "user_id": customer.user_id or ""},
            "message": {"text": message.text, "type": message.type, "id": message.id}
            if message
            else {"text": "", "type": "", "id": ""},
            "now": moment,
            "env": dict(bot.env),
        }
        self.writer = Writer(bot, renderer, self.vars, fixed=fixed)

    def state(self, *, last_seen: float) -> State:
        return State(
            flow=self.flow, step=self.step, status=self.status, vars=dict(self.vars), stack=tuple(self.stack),
            attempts=self.attempts, misses=self.misses, page=self.page, last_seen=last_seen,
            handoff_at=self.handoff_at if self.status == HANDOFF else 0.0,
        )

    # --- where we are -----------------------------------------------------------------------------

    def position(self) -> Position | None:
        """The current flow and step index; None (logged) if the flows changed under the state."""
        flow = self.bot.flows.get(self.flow)
        index = flow.index(self.step) if flow else -1
        if flow is None or index < 0:
            log.warning("step %s/%s no longer exists; starting over", self.flow, self.step)
            return None
        return flow, index

    def current(self) -> Step | None:
        found = self.position()
        return found[0].steps[found[1]] if found else None

    # --- running steps ---------------------------------------------------------------------------

    def start(self) -> None:
        """Run the start flow from its first step."""
        self.run(self._enter(Jump("goto", self.bot.start)))

    def follow(self, jump: Jump, *, waiting: bool) -> None:
        """Jump from the current step (`waiting`: a called flow comes back to this step, not the next)."""
        found = self.position()
        if found is None:
            self.start()
            return
        self.run(self._target(jump, found, waiting=waiting))

    def next(self) -> None:
        """Go on with the step after the current one."""
        found = self.position()
        self.run((found[0], found[1] + 1) if found else None)

    def run(self, position: Position | None) -> None:
        """Run steps from `position` until one waits, yields an effect or the conversation ends."""
        while position is not None:
            flow, index = position
            if index >= len(flow.steps):
                position = self._return()
                continue
            self.steps_run += 1
            if self.steps_run > MAX_STEPS:
                self._loop_guard(flow, flow.steps[index])
                return
            step = flow.steps[index]
            # WAITING until the step says otherwise: only waiting steps stop without setting a status
            self.flow, self.step, self.status = flow.name, step.key, WAITING
            result = self.execute(step)
            if result is STOP:
                return
            if isinstance(result, Jump):
                position = self._target(result, (flow, index), waiting=False)
            else:
                position = (flow, index + 1)

    def execute(self, step: Step) -> Jump | _Stop | None:
        """Do one step; None = go on with the next one."""
        action = step.action
        if isinstance(action, model.Say):
            self.say(action.messages)
            return None
        if isinstance(action, model.Menu | model.Ask | model.Route):
            self.attempts = self.page = 0
            if self._nothing_to_choose(action):
                return None
            self.prompt(action)
            self.effects.extend(schedule.arm(self.flow, step, self.now))  # a reminder, a timeout
            return STOP
        if isinstance(action, model.Wait):
            return self._wait(step, action)
        if isinstance(action, model.If):
            passed = bool(self.writer.renderer.evaluate(action.condition, self.writer.context()))
            return action.then if passed else action.else_
        if isinstance(action, model.Set):
            for name, source in action.values.items():
                self.vars[name] = self.writer.value(source)
            return None
        if isinstance(action, model.Http):
            self.effects.append(self._http_call(action))
            self.status = HTTP
            return STOP
        if isinstance(action, model.Goto):
            return action.jump
        if isinstance(action, model.End):
            self.say(action.messages)
            if (cut := self._interrupted()) is not None:  # a wait's flow ended: back to what it cut into
                self.finished.append((self.flow, dict(self.vars)))
                return cut
            self.finish()
            return STOP
        if isinstance(action, model.Handoff):
            self.say(action.messages)
            reason = self.writer.renderer.render(action.reason, self.writer.context()) if action.reason else ""
            self.effects.append(HandoffOpened(reason))
            self.status = HANDOFF
            self.handoff_at = self.now
            return STOP
        raise TypeError(f"unknown step {action!r}")

    def say(self, specs: tuple[model.MessageSpec, ...]) -> None:
        self.replies.extend(self.writer.messages(specs))

    def prompt(self, action: model.Menu | model.Ask | model.Route, *, retry: bool = False) -> None:
        """Show a waiting step's question (again, after a miss, with `retry`)."""
        if isinstance(action, model.Menu):
            self.replies.append(self.menu_message(action))
        elif isinstance(action, model.Route):
            self.say(action.prompt)
        elif action.expect.kind == "choice":
            specs = action.retry if retry and action.retry else action.prompt
            self._choice_prompt(action, self.writer.messages(specs))
        else:
            self.say(action.prompt)

    def options(self, action: model.Menu | model.Ask) -> list[menus.Entry]:
        """The options of a menu or choice question as shown now (those from data, one per item)."""
        return self.writer.entries(action.options if isinstance(action, model.Menu) else action.expect.choices)[0]

    def _nothing_to_choose(self, action: model.Menu | model.Ask | model.Route) -> bool:
        """Options from data that came out empty: say so (the author's `empty:` or a built-in text) and go on."""
        if isinstance(action, model.Route) or (isinstance(action, model.Ask) and action.expect.kind != "choice"):
            return False
        options = action.options if isinstance(action, model.Menu) else action.expect.choices
        if all(o.data is None for o in options):
            return False  # written options: there is always something to choose
        entries, notes = self.writer.entries(options)
        if entries:
            self.replies.extend(self.writer.messages(tuple(notes)))
            return False
        self.say(tuple(notes) or NOTHING_TO_CHOOSE)
        if isinstance(action, model.Ask):
            self.vars.pop(action.save, None)
        return True

    def menu_message(self, menu: model.Menu) -> outbound.Outgoing:
        entries = self.options(menu)
        return menus.message(
            self.writer.text(menu.text), entries, page=self.page, button=self.writer.text(menu.button),
            more=self.writer.text(menu.more), header=self.writer.optional(menu.header),
            footer=self.writer.optional(menu.footer),
        )

    def choice_entries(self, ask: model.Ask) -> list[menus.Entry]:
        return self.options(ask)

    def _choice_prompt(self, ask: model.Ask, messages: list[outbound.Outgoing]) -> None:
        """The last text of the question carries the choices as buttons or a list."""
        at, body = len(messages), answers.hint(ask.expect, self.writer.lang)
        for i, message in enumerate(messages):
            if isinstance(message, outbound.Text):
                at, body = i, message.body
        messages[at:at + 1] = [
            menus.message(
                body, self.choice_entries(ask), page=self.page, button=self.writer.text(MENU_DEFAULTS.button),
                more=self.writer.text(MENU_DEFAULTS.more),
            )
        ]
        self.replies.extend(messages)

    def _wait(self, step: Step, wait: model.Wait) -> Jump | _Stop | None:
        """A wait step: a timer holding the variables and the way back, and the conversation is free meanwhile."""
        where = f"flow {self.flow}, step {step.key} ({step.where})"
        if wait.cancel is not None:  # no pause: the flow's pending waits are called off, and this one goes on
            self.effects.append(CancelTimers(("wait",), f"called off by flow {self.flow}", wait.cancel))
            return None
        due = schedule.wait_due(wait, renderer=self.writer.renderer, context=self.writer.context(), now=self.now,
                                where=where)
        if due is None:
            return None
        if due <= self.now:
            log.info("%s: the moment to wait for has passed; %s", where, f"going to {wait.past}" if wait.past
                     else "going on at once")
            return wait.past
        below = next((i for i in range(len(self.stack) - 1, -1, -1) if self.stack[i].interrupted), -1)
        back = [[f.flow, f.step, f.again] for f in self.stack[below + 1:]]
        self.effects.append(SetTimer("wait", due, self.flow, step.key, data={"vars": dict(self.vars), "stack": back}))
        if (cut := self._interrupted()) is not None:
            return cut  # this flow waits again: back to the conversation it cut into
        self.finish(suspended=True)
        return STOP

    def _interrupted(self) -> Jump | None:
        """Where to go back to when a flow a wait resumed (cutting into a conversation) waits again or ends."""
        below = next((i for i in range(len(self.stack) - 1, -1, -1) if self.stack[i].interrupted), None)
        if below is None:
            return None
        frame = self.stack[below]
        del self.stack[below:]
        return Jump("goto", frame.flow, frame.step)

    def finish(self, *, suspended: bool = False) -> None:
        """The conversation is over: idle, nothing kept but the customer's language.

        `suspended`: a wait step took the flow's variables along; the flow has not finished.
        """
        if self.flow and not suspended:
            self.finished.append((self.flow, dict(self.vars)))
        kept = {k: v for k, v in self.vars.items() if k in KEPT_ON_END}
        self.vars.clear()
        self.vars.update(kept)
        self.flow, self.step, self.status = "", "", IDLE
        self.stack.clear()
        self.attempts = self.misses = self.page = 0

    # --- jumps -----------------------------------------------------------------------------------

    def _target(self, jump: Jump, here: Position, *, waiting: bool) -> Position | None:
        if jump.kind == "end":
            self.finish()
            return None
        if jump.kind == "return":
            return self._return()
        if jump.kind == "call":
            flow, index = here
            if waiting:
                back = flow.steps[index].key
            else:
                back = flow.steps[index + 1].key if index + 1 < len(flow.steps) else ""
            self.stack.append(Frame(flow.name, back, again=waiting))
            return self._enter(Jump("goto", jump.flow))
        return self._enter(jump)

    def _enter(self, jump: Jump) -> Position | None:
        flow = self.bot.flows.get(jump.flow)
        index = flow.index(jump.step) if flow else -1
        if flow is None or index < 0:
            log.error("cannot go to %s: there is no such flow or step; the conversation ends", jump)
            self.finish()
            return None
        return flow, index

    def _return(self) -> Position | None:
        """Leave the current flow: back to the caller, or the end of the conversation."""
        if not self.stack:
            self.finish()
            return None
        frame = self.stack.pop()
        flow = self.bot.flows.get(frame.flow)
        if flow is None:
            log.error("cannot return to flow %s: it no longer exists; the conversation ends", frame.flow)
            self.finish()
            return None
        if not frame.step:
            return flow, len(flow.steps)  # the call was the flow's last step: leave this flow too
        return self._enter(Jump("goto", frame.flow, frame.step))

    def leap(self, jump: Jump, *, calls: bool) -> None:
        """A jump from anywhere (trigger word, fallback): `calls` comes back to the waiting step,
        otherwise the conversation so far (called flows included) is left behind."""
        waiting = self.status == WAITING and self.flow in self.bot.flows
        self.attempts = self.misses = self.page = 0
        if calls:
            if waiting:
                self.stack.append(Frame(self.flow, self.step, again=True))
            self.run(self._enter(Jump("goto", jump.flow, jump.step)))
            return
        self.stack.clear()
        if jump.kind in ("end", "return"):
            self.finish()
            return
        self.run(self._enter(jump))

    def _loop_guard(self, flow: Flow, step: Step) -> None:
        log.error(
            "flow %s step %s (%s): stopped after %d steps without waiting for the customer; "
            "check the goto targets for a loop. The conversation was ended.",
            flow.name, step.key, step.where, MAX_STEPS,
        )
        del self.replies[MAX_REPLIES_AFTER_LOOP:]
        self.effects.clear()
        self.finish()

    # --- effects ---------------------------------------------------------------------------------

    def _http_call(self, http: model.Http) -> HttpCall:
        context = self.writer.context()
        render = self.writer.renderer.render
        return HttpCall(
            method=http.method.upper(),
            url=self.writer.renderer.render_url(http.url, context),
            headers={k: render(v, context) for k, v in http.headers.items()},
            body=self.writer.value(http.body),
            timeout=http.timeout,
            follow_redirects=http.follow_redirects,
            files=tuple((name, self.vars[var]) for name, var in http.files.items()
                        if isinstance(self.vars.get(var), dict) and "file" in self.vars[var]),
        )

    def http_result(self, result: HttpResult) -> None:
        step = self.current() if self.status == HTTP else None
        if step is None or not isinstance(step.action, model.Http):
            log.warning("an http result arrived while no http step was waiting; ignored")
            return
        http = step.action
        if http.save:
            # every answer, good or bad: "not found" and "full" told apart from "server down", the API's words shown
            self.vars[f"{http.save}_status"] = result.status  # 0: no answer at all
            self.vars[f"{http.save}_body"] = plain(result.data)
        if result.ok:
            if http.save:
                self.vars[http.save] = result.data
                self.vars.pop(f"{http.save}_error", None)
            self.next()
            return
        log.warning("http step %s/%s failed: %s", self.flow, self.step, result.error or result.status)
        if http.save:
            self.vars.pop(http.save, None)
            self.vars[f"{http.save}_error"] = result.error or f"the server answered {result.status}"
        if http.on_error:
            self.follow(http.on_error, waiting=False)
        else:
            self.next()
