"""The flow model: what a set of flow files means, after loading and validation.

Pure data. `flows/load.py` builds it from YAML (and reports every problem with its line);
`engine/` walks it. Texts are Jinja sources, rendered by `templates.py` at run time.

Localised text: every text an author writes may be a plain string (the same in every
language) or a mapping of language code to string (`{vi: "Xin chào", en: "Hello"}`).
In the model both become a `Localized` mapping; a plain string is stored under `ANY`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wabot.templates import DEFAULT_TIMEZONE
from wabot.whatsapp.inbound import MediaKind

ANY = "*"  # the language key of a text written as a plain string

Localized = Mapping[str, str]  # language code (or ANY) -> Jinja source


@dataclass(frozen=True, slots=True)
class Where:
    """Where something was written: file (as given to the loader) and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


# --- jumps ------------------------------------------------------------------------------------


JumpKind = Literal["goto", "call", "end", "return"]


@dataclass(frozen=True, slots=True)
class Jump:
    """Where to go next.

    kind "goto": continue at `flow`/`step` (step None = the flow's first step);
    kind "call": run `flow` from its start, then come back to the step after the caller
                 (or, for a waiting step, to that step again);
    kind "end": finish the conversation; kind "return": leave the current sub-flow now.
    Targets are resolved at load time: `flow` is always a real flow name for goto/call.
    """

    kind: JumpKind
    flow: str = ""
    step: str | None = None

    def __str__(self) -> str:
        if self.kind in ("end", "return"):
            return self.kind
        return f"{self.flow}.{self.step}" if self.step else self.flow


END = Jump("end")
RETURN = Jump("return")


# --- messages the bot sends (before rendering) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextSpec:
    text: Localized
    preview_url: bool = False


@dataclass(frozen=True, slots=True)
class FromData:
    """Options built from a list at run time: one per item, `title`/`id`/`description` rendered with `item`."""

    source: str  # a Jinja expression giving the list
    id: str | None = None  # a Jinja source; None: the item's `id`, else its title
    empty: tuple[MessageSpec, ...] = ()  # said when the list is empty


@dataclass(frozen=True, slots=True)
class ChoiceSpec:
    """A reply button or a list row. `id` is what WhatsApp sends back when it is tapped."""

    id: str
    title: Localized
    description: Localized | None = None
    synonyms: tuple[str, ...] = ()  # folded words that pick it when typed
    data: FromData | None = None  # one choice per item of a list


@dataclass(frozen=True, slots=True)
class ButtonsSpec:
    text: Localized
    buttons: tuple[ChoiceSpec, ...]
    header: Localized | None = None
    footer: Localized | None = None


@dataclass(frozen=True, slots=True)
class SectionSpec:
    title: Localized | None
    rows: tuple[ChoiceSpec, ...]


@dataclass(frozen=True, slots=True)
class ListSpec:
    text: Localized
    button: Localized
    sections: tuple[SectionSpec, ...]
    header: Localized | None = None
    footer: Localized | None = None


@dataclass(frozen=True, slots=True)
class CtaSpec:
    text: Localized
    button: Localized
    url: str
    header: Localized | None = None
    footer: Localized | None = None


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """`source` is a Jinja source giving an https URL (sent as link) or a media id."""

    kind: MediaKind
    source: str
    caption: Localized | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class LocationSpec:
    latitude: float
    longitude: float
    name: Localized | None = None
    address: Localized | None = None


@dataclass(frozen=True, slots=True)
class ContactsSpec:
    contacts: tuple[dict[str, Any], ...]  # Meta's shape; string leaves are Jinja sources


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """An approved template. `language` None = the customer's language. String leaves of
    `components` are Jinja sources."""

    name: str
    language: str | None
    components: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyRef:
    """`reply: name` — a named reply from a `replies:` section, chosen by the customer's language."""

    name: str


MessageSpec = (
    TextSpec | ButtonsSpec | ListSpec | CtaSpec | MediaSpec | LocationSpec | ContactsSpec | TemplateSpec | ReplyRef
)


# --- steps --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    messages: tuple[MessageSpec, ...]


@dataclass(frozen=True, slots=True)
class Option:
    """A menu option; `id` is stable (author-given or derived from flow, step and title)."""

    id: str
    title: Localized
    jump: Jump
    description: Localized | None = None
    synonyms: tuple[str, ...] = ()  # folded words that pick it when typed
    data: FromData | None = None  # one option per item of a list


@dataclass(frozen=True, slots=True)
class Remind:
    """`remind:` on an ask or menu: after `after` seconds of silence say `messages` (empty: the question
    again), at most `times` times, each after another `after` of silence."""

    after: float
    messages: tuple[MessageSpec, ...] = ()
    times: int = 1
    written: str = ""  # the duration as the author wrote it ("2h"), for the diagram and messages


@dataclass(frozen=True, slots=True)
class Timeout:
    """`timeout:` on an ask or menu: `after` seconds after the question, say `messages` and jump."""

    after: float
    jump: Jump
    messages: tuple[MessageSpec, ...] = ()
    written: str = ""


@dataclass(frozen=True, slots=True)
class Menu:
    """A prompt with options: <=3 reply buttons, 4-10 a list, more are paged with `more`."""

    text: Localized
    options: tuple[Option, ...]
    header: Localized | None = None
    footer: Localized | None = None
    button: Localized = field(default_factory=lambda: {"vi": "Chọn", "en": "Choose", ANY: "Chọn"})
    more: Localized = field(default_factory=lambda: {"vi": "Xem thêm", "en": "More", ANY: "Xem thêm"})
    save: str | None = None  # variable that receives the chosen option's title
    triggers: bool = True
    remind: Remind | None = None
    timeout: Timeout | None = None


ExpectKind = Literal["text", "number", "integer", "email", "phone", "date", "time", "datetime", "yes_no", "choice",
                     "regex", "media", "location", "any"] | MediaKind


@dataclass(frozen=True, slots=True)
class Expect:
    """What an `ask` accepts.

    kind: text | number | integer | email | phone | date | time | datetime | yes_no | choice | regex |
          image | video | audio | document | sticker | media | location | any.
    """

    kind: ExpectKind = "text"
    choices: tuple[ChoiceSpec, ...] = ()  # kind "choice"
    pattern: str | None = None  # kind "regex"
    min: float | None = None  # number/integer bounds, text length bounds
    max: float | None = None
    earliest: str | None = None  # date bounds ("today", "+60d", "2026-12-31"), time bounds ("08:00")
    latest: str | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    prompt: tuple[MessageSpec, ...]
    save: str
    expect: Expect = field(default_factory=Expect)
    retry: tuple[MessageSpec, ...] = ()
    attempts: int | None = None  # None = ask until answered (the fallback still counts misses)
    on_fail: Jump | None = None
    triggers: bool = True
    remind: Remind | None = None
    timeout: Timeout | None = None
    accept: tuple[str, ...] = ()  # a file's MIME types allowed ("image/*"); empty: the settings' media.types
    max_bytes: int | None = None  # a file larger than this is refused; None: the settings' media.max_bytes
    too_large: tuple[MessageSpec, ...] = ()  # said when the file is too large (default: a built-in sentence)
    wrong_type: tuple[MessageSpec, ...] = ()  # said when the file's bytes are not an accepted type


@dataclass(frozen=True, slots=True)
class If:
    condition: str  # Jinja expression
    then: Jump | None = None  # None = go on with the next step
    else_: Jump | None = None


@dataclass(frozen=True, slots=True)
class Set:
    values: Mapping[str, Any]  # "{{ expr }}" strings are evaluated, other strings rendered


@dataclass(frozen=True, slots=True)
class Route:
    """Keyword and regex routes on the customer's next message."""

    routes: tuple[RouteRule, ...]
    prompt: tuple[MessageSpec, ...] = ()
    else_: Jump | None = None  # None = the fallback
    triggers: bool = True


@dataclass(frozen=True, slots=True)
class RouteRule:
    jump: Jump
    keywords: tuple[str, ...] = ()  # folded (no case, no diacritics); matches as whole words
    regex: str | None = None  # matched against the raw text, case-insensitive
    save: str | None = None  # variable receiving the message text


@dataclass(frozen=True, slots=True)
class Http:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # JSON; string leaves are Jinja sources
    timeout: float = 10.0
    save: str | None = None
    on_error: Jump | None = None  # None = go on with the next step, with `<save>_error` set
    follow_redirects: bool = False  # within the same host only (issue 16)
    files: Mapping[str, str] = field(default_factory=dict)  # multipart field -> saved file variable (media)


@dataclass(frozen=True, slots=True)
class Goto:
    jump: Jump


@dataclass(frozen=True, slots=True)
class End:
    messages: tuple[MessageSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Handoff:
    """Hand the customer to a person; the bot stays silent until the conversation is given back."""

    messages: tuple[MessageSpec, ...] = ()
    reason: str = ""
    back: tuple[str, ...] = ()  # folded words that bring the customer back to the bot
    expired: tuple[MessageSpec, ...] = ()  # said when no person answered in time (empty: the built-in text)


@dataclass(frozen=True, slots=True)
class Wait:
    """Pause the flow, then go on with the next step: for `seconds`, or until a moment computed from variables.

    `until` (a Jinja expression giving a date, or a date and time) moved by `shift` seconds (`before: 1d` is
    -86400), then set to the time of day `at` ("08:00") in the bot's time zone. A moment already past goes on
    at once, or jumps to `past`. While it waits the conversation is free: the customer may start another one.
    `cancel` (`wait: {cancel: visit_reminder}`): no pause; the customer's pending waits in that flow are called off.
    """

    seconds: float | None = None
    until: str | None = None
    shift: float = 0.0
    at: str | None = None
    past: Jump | None = None
    written: str = ""  # as the author wrote it, for the diagram
    cancel: str | None = None


Action = Say | Menu | Ask | If | Set | Route | Http | Goto | End | Handoff | Wait


@dataclass(frozen=True, slots=True)
class Step:
    """A step. `key` is its id, or `#N` (1-based position) when the author gave none."""

    key: str
    action: Action
    where: Where
    has_id: bool = False


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    where: Where
    opens_with: TemplateSpec | None = None  # sent instead of the first messages when the 24-hour window is closed
    inputs: tuple[str, ...] = ()  # the variables the business API must give when it starts this flow

    def index(self, key: str | None) -> int:
        """Position of the step with this key (None = the first step); -1 if there is none."""
        if key is None:
            return 0
        for i, step in enumerate(self.steps):
            if step.key == key:
                return i
        return -1


# --- bot-wide --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trigger:
    """Words that work from anywhere. `resume`: after `call`, go back to where the customer was."""

    words: tuple[str, ...]  # folded
    jump: Jump
    where: Where
    resume: bool = False
    written: tuple[str, ...] = ()  # the words as the author wrote them, accents and all (for `wabot graph`)


@dataclass(frozen=True, slots=True)
class Fallback:
    """What to do when a reply matches nothing: say `messages`, re-prompt; after `after` misses, jump."""

    messages: tuple[MessageSpec, ...] = (
        TextSpec({"vi": "Xin lỗi, mình chưa hiểu ý bạn. Bạn chọn một mục bên dưới nhé.",
                  "en": "Sorry, I did not get that. Please pick one of the options below.",
                  ANY: "Xin lỗi, mình chưa hiểu ý bạn. Bạn chọn một mục bên dưới nhé."}),
    )
    after: int = 3
    jump: Jump | None = None


@dataclass(frozen=True, slots=True)
class Bot:
    """Everything loaded from the flow files, plus the bot settings from config."""

    flows: Mapping[str, Flow]
    replies: Mapping[str, Mapping[str, MessageSpec]]  # name -> language (or ANY) -> message
    triggers: tuple[Trigger, ...] = ()
    fallback: Fallback = field(default_factory=Fallback)
    welcome_back: tuple[MessageSpec, ...] = ()
    start: str = "main"
    default_language: str = "vi"
    session_timeout: float = 30 * 60.0  # seconds of silence after which the conversation restarts
    handoff_timeout: float = 4 * 3600.0  # seconds a handoff waits for a person's answer before it ends
    stop_words: tuple[str, ...] = ()  # folded: the customer opts out (confirmed even during a handoff)
    timezone: str = DEFAULT_TIMEZONE  # for `now` and the date filters
    env: Mapping[str, str] = field(default_factory=dict)  # `{{ env.X }}`: the environment, secrets removed
