"""The size a conversation's saved state may reach, and what happens to a flow that goes past it.

A flow that saves a huge http answer (or keeps appending to a variable) would make every later turn of
that customer slow, and past SQLite's limit no turn could be saved at all (issue 16 item 6).
"""

from __future__ import annotations

import json
import logging

from wabot.logs import mask
from wabot.state import State

log = logging.getLogger(__name__)

DEFAULT_MAX_STATE_BYTES = 256 * 1024


def fit_state(state: State, limit: int, *, customer: str) -> tuple[State, str]:
    """(`state`, its JSON) if that fits in `limit` bytes; else without its largest variables, each with
    `<name>_error` set (the JSON is the one the store saves: a turn encodes its state once).

    The flow sees the same thing as a failed http step: the variable is missing and `<name>_error` says why.
    """
    text = state.to_json()
    if len(text) * 4 <= limit:  # UTF-8 takes at most 4 bytes a character: no need to encode it to know
        return state, text
    size = len(text.encode())
    if size <= limit:
        return state, text
    sizes = {name: len(json.dumps(value, ensure_ascii=False, default=str).encode())
             for name, value in state.vars.items()}
    kept = dict(state.vars)
    dropped: list[str] = []
    for name in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if size <= limit:
            break
        del kept[name]
        size -= sizes[name]
        kept[f"{name}_error"] = f"the value was too large to keep ({sizes[name]} bytes; bot.max_state_bytes)"
        dropped.append(name)
    log.warning("flow %s step %s: the conversation of %s grew past bot.max_state_bytes (%d); dropped %s",
                state.flow, state.step, mask(customer), limit, ", ".join(dropped))
    fitted = state.with_(vars=kept)
    return fitted, fitted.to_json()
