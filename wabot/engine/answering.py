"""A customer's reply to the step that waits for it: a menu option, an answer to a question, a route, or a miss.

Functions over a Turn (turn.py runs the steps; this decides what a reply means for a waiting step).
"""

from __future__ import annotations

import re

from wabot.engine import answers, menus
from wabot.engine.events import MediaRule
from wabot.engine.turn import MENU_DEFAULTS, Turn
from wabot.flows import model
from wabot.flows.model import Step
from wabot.state import WAITING, State
from wabot.text import fold
from wabot.whatsapp import inbound, outbound


def accepts(turn: Turn, step: Step, message: inbound.Message) -> bool:
    """Whether the waiting step takes `message` as one of its options (so a trigger word does not win)."""
    action = step.action
    if isinstance(action, model.Menu):
        return menus.pick(turn.options(action), message) not in (None, menus.NEXT_PAGE)
    if isinstance(action, model.Ask) and action.expect.kind == "choice":
        return menus.pick(turn.choice_entries(action), message) not in (None, menus.NEXT_PAGE)
    if isinstance(action, model.Route):
        typed = fold(message.text)
        return any(typed == keyword for rule in action.routes for keyword in rule.keywords)
    return False


def answer(turn: Turn, message: inbound.Message) -> None:
    """The customer's reply to the waiting step: an option, an answer, a route, or a miss."""
    step = turn.current()
    if step is None:
        turn.start()
        return
    action = step.action
    if isinstance(message.content, inbound.Reply) and not accepts(turn, step, message) and older_menu(turn, message):
        return
    if isinstance(action, model.Menu):
        _menu(turn, action, message)
    elif isinstance(action, model.Ask):
        _ask(turn, action, message)
    elif isinstance(action, model.Route):
        _route(turn, action, message)
    else:  # not a waiting step (the flows changed): carry on from it
        found = turn.position()
        turn.run(found)


def older_menu(turn: Turn, message: inbound.Message) -> bool:
    """A tap on an option of an earlier menu (customers scroll up): honour it there, if that menu still exists."""
    if not isinstance(message.content, inbound.Reply):
        return False
    tapped = message.content.id
    flows = sorted(turn.bot.flows.values(), key=lambda f: f.name != turn.flow)  # this flow's menus first
    for flow in flows:
        for step in flow.steps:
            action = step.action
            if isinstance(action, model.Menu):
                options: tuple[model.Option | model.ChoiceSpec, ...] = action.options
            elif isinstance(action, model.Ask) and action.expect.kind == "choice":
                options = action.expect.choices
            else:
                continue
            if (flow.name, step.key) != (turn.flow, turn.step) and any(
                o.data is None and o.id == tapped for o in options
            ):
                turn.flow, turn.step, turn.status = flow.name, step.key, WAITING
                turn.attempts = turn.misses = turn.page = 0
                answer(turn, message)
                return True
    return False


def _menu(turn: Turn, menu: model.Menu, message: inbound.Message) -> None:
    entries = turn.options(menu)
    chosen = menus.pick(entries, message, page=turn.page, more=turn.writer.text(menu.more))
    if chosen == menus.NEXT_PAGE:
        turn.page = menus.next_page(len(entries), turn.page)
        turn.replies.append(turn.menu_message(menu))
    elif chosen is None:
        miss(turn, menu)
    else:
        if menu.save:
            save_choice(turn, menu.save, entries[chosen])
        turn.misses = turn.page = 0
        turn.follow(menu.options[entries[chosen].source].jump, waiting=True)


def _ask(turn: Turn, ask: model.Ask, message: inbound.Message) -> None:
    if ask.expect.kind == "choice":
        entries = turn.choice_entries(ask)
        chosen = menus.pick(entries, message, page=turn.page, more=turn.writer.text(MENU_DEFAULTS.more))
        if chosen == menus.NEXT_PAGE:
            turn.page = menus.next_page(len(entries), turn.page)
            turn.prompt(ask)
            return
        if chosen is not None:
            save_choice(turn, ask.save, entries[chosen])
        answer = answers.MISS if chosen is None else answers.Answer(True, entries[chosen].title)
    else:
        answer = answers.parse(ask.expect, message, today=turn.today)
    fetched = turn.fetched if isinstance(message.content, inbound.Media) else None
    if answer.ok and fetched is not None:  # the server downloaded and checked the file (server/media.py)
        answer = answers.Answer(True, fetched.value) if not fetched.problem else answers.Answer(
            False, why=REFUSED[fetched.problem])
    if answer.ok:
        turn.vars[ask.save] = answer.value
        turn.attempts = turn.misses = turn.page = 0
        turn.next()
        return
    turn.attempts += 1
    if ask.attempts is not None and turn.attempts >= ask.attempts:
        turn.attempts = turn.misses = 0
        if ask.on_fail:
            turn.follow(ask.on_fail, waiting=False)
        else:
            turn.next()
        return
    if _escalate(turn):
        return
    own = {"too_large": ask.too_large, "wrong_type": ask.wrong_type}.get(fetched.problem if fetched else "", ())
    if own:  # the author's words for a file refused
        turn.say(own)
        turn.prompt(ask)
    elif answer.why is not None:  # a well-formed answer out of bounds: say why, then ask again
        turn.replies.append(outbound.Text(answer.why[0] if turn.writer.lang == "vi" else answer.why[1]))
        turn.prompt(ask)
    elif ask.retry:
        if ask.expect.kind == "choice":
            turn.prompt(ask, retry=True)
        else:
            turn.say(ask.retry)
    else:
        turn.replies.append(outbound.Text(answers.hint(ask.expect, turn.writer.lang)))
        turn.prompt(ask)


REFUSED = {  # (vi, en) for a file refused; a step's too_large/wrong_type replace the first two
    "too_large": ("Tệp này lớn quá, bạn gửi tệp nhỏ hơn giúp mình nhé.",
                  "That file is too large; please send a smaller one."),
    "wrong_type": ("Mình chưa nhận được loại tệp này, bạn gửi lại đúng loại giúp mình nhé.",
                   "That kind of file is not accepted here; please send one of the right kind."),
    "unavailable": ("Mình chưa tải được tệp bạn gửi, bạn gửi lại giúp mình nhé.",
                    "We could not get the file you sent; please send it again."),
}


def wanted_media(bot: model.Bot, state: State | None, message: inbound.Message) -> MediaRule | None:
    """The waiting question's rule when `message` carries a file it takes (the server downloads it), else None."""
    content = message.content
    if state is None or state.status != WAITING or not isinstance(content, inbound.Media):
        return None
    flow = bot.flows.get(state.flow)
    found = flow.index(state.step) if flow is not None else -1
    action = flow.steps[found].action if flow is not None and found >= 0 else None
    if not isinstance(action, model.Ask) or action.expect.kind not in (content.kind, "media"):
        return None
    return MediaRule(action.accept, action.max_bytes)


def save_choice(turn: Turn, name: str, entry: menus.Entry) -> None:
    """`save: x` keeps the title shown (x), the option's id (x_id) and, for options from data, the item (x_item)."""
    turn.vars[name] = entry.title
    turn.vars[f"{name}_id"] = entry.id
    if entry.item is not None:
        turn.vars[f"{name}_item"] = entry.item
    else:
        turn.vars.pop(f"{name}_item", None)


def _route(turn: Turn, route: model.Route, message: inbound.Message) -> None:
    text = message.text.strip()
    words = f" {fold(text)} "
    for rule in route.routes:
        found = re.search(rule.regex, text, re.IGNORECASE) if rule.regex and text else None
        if found or any(f" {fold(k)} " in words for k in rule.keywords if fold(k)):
            if rule.save:
                turn.vars[rule.save] = found[0] if found else text
            turn.misses = 0
            turn.follow(rule.jump, waiting=True)
            return
    if route.else_:
        turn.misses = 0
        turn.follow(route.else_, waiting=True)
    else:
        miss(turn, route)


def miss(turn: Turn, action: model.Menu | model.Route) -> None:
    """A reply that matched nothing: the fallback's messages and the question again, or its jump."""
    if _escalate(turn):
        return
    turn.say(turn.bot.fallback.messages)
    turn.prompt(action, retry=True)


def _escalate(turn: Turn) -> bool:
    """Count a miss; after `fallback.after` in a row, jump to the fallback target (True)."""
    turn.misses += 1
    fallback = turn.bot.fallback
    if fallback.jump is None or turn.misses < fallback.after:
        return False
    turn.leap(fallback.jump, calls=fallback.jump.kind == "call")
    return True
