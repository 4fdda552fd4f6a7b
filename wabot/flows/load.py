"""Loading flow files: read, parse with lines, check, build one Bot; every problem in plain words."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from wabot.config import BotSettings, template_env
from wabot.errors import FlowError, Problem
from wabot.flows.build import Builder, Built
from wabot.flows.check import check_document
from wabot.flows.lint import check_bot
from wabot.flows.model import Bot, Handoff
from wabot.flows.source import Document, parse
from wabot.flows.texts import Use
from wabot.text import fold

log = logging.getLogger(__name__)

# problems about names defined in other files: unreliable while some file cannot be read
_CROSS = re.compile(r"there is no |has no step with id|the start flow|no step saves or sets")


def flow_files(paths: Sequence[Path | str]) -> tuple[list[Path], list[Problem]]:
    """The files to read: files as given, folders as every *.yaml / *.yml in them, sorted."""
    files: list[Path] = []
    problems: list[Problem] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                problems.append(Problem(f"the folder {path} has no .yaml flow files", str(path), 1,
                                        fix="put your flow files (ending in .yaml) in it"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(f"{path} does not exist", str(path), 1,
                                    fix="check the path of the flow files (bot.flows in config.yaml)"))
    return files, problems


def read(file: Path) -> Document:
    """Read and parse one file; an unreadable file is a problem, not an exception."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Document(str(file), None, (Problem("the file is not UTF-8 text", str(file), 1,
                                                  fix="save it as UTF-8 in your editor"),))
    except OSError as err:
        return Document(str(file), None, (Problem(f"the file cannot be read ({err.strerror})", str(file), 1,
                                                  fix="check that it exists and may be read"),))
    return parse(text, str(file))


def load_bot(
    paths: Sequence[Path | str],
    *,
    start: str,
    default_language: str,
    session_timeout: float,
    timezone: str,
    env: Mapping[str, str],
    env_allowed: tuple[str, ...] | None = None,
    handoff_timeout: float = 4 * 3600.0,
    stop_words: Sequence[str] = (),
) -> tuple[Bot, list[Problem]]:
    """All flow files merged into one Bot, plus every problem (errors and warnings) found.

    With errors the Bot is a best effort (empty when the files could not even be read or
    did not match the schema); never run a Bot that came with errors.
    """
    files, problems = flow_files(paths)
    docs = [read(file) for file in files]
    clean: list[Document] = []
    for doc in docs:
        found = [*doc.problems, *check_document(doc)]
        problems.extend(found)
        if not any(p.severity == "error" for p in found):
            clean.append(doc)  # building needs files that match the schema
    complete = len(clean) == len(docs) and not problems
    parsed = [doc for doc in docs if doc.data is not None]
    built = _build(parsed) if len(parsed) > len(clean) else None  # schema mistakes hide no other mistake...
    if built is None:
        built = Builder(clean).build() if clean else Built()  # ...unless the builder cannot read past them
    else:
        clean = parsed
    bot = Bot(
        flows=built.flows, replies=built.replies, triggers=tuple(built.triggers), fallback=built.fallback,
        welcome_back=built.welcome_back, start=start, default_language=default_language,
        session_timeout=session_timeout, timezone=timezone, env=dict(env), handoff_timeout=handoff_timeout,
        stop_words=tuple(w for w in (fold(str(word)) for word in stop_words) if w),
    )
    later = [*built.texts.problems, *check_bot(bot, built, first_file=str(files[0]) if files else "flows")]
    if env_allowed is not None:
        later.extend(_env_not_allowed(built.texts.env_uses, env_allowed))
    if not complete:
        # report what is certain: no warnings, nothing a file that could not be read might answer (a missing
        # target may live there), nothing on a line that already has a problem; the rest once they are fixed
        seen = {(p.file, p.line) for p in problems}
        unread = _raw_text([Path(d.file) for d in docs if d not in clean])
        later = [p for p in later if p.severity == "error" and (p.file, p.line) not in seen
                 and not (_CROSS.search(p.message) and _may_be_in(p.message, unread))]
    problems.extend(later)
    problems.sort(key=lambda p: (p.file, p.line))
    log.debug("loaded %d flows from %d files, %d problems", len(bot.flows), len(files), len(problems))
    return bot, problems


def _env_not_allowed(uses: list[Use], allowed: tuple[str, ...]) -> list[Problem]:
    """A flow reading `{{ env.X }}` when X is not in the config's bot.env (flows see only those)."""
    return [
        Problem(f"reads env.{use.name}, but {use.name} is not in bot.env in the config, so flows cannot see it",
                use.file, use.line, use.where, f"add it to config.yaml: bot: env: [{', '.join([*allowed, use.name])}]",
                "warning")
        for use in uses if use.name not in allowed
    ]


def _raw_text(files: list[Path]) -> str:
    """The text of the files that could not be built from, for a rough look at what they may define."""
    texts = []
    for file in files:
        try:
            texts.append(file.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            texts.append("")
    return "\n".join(texts)


def _may_be_in(message: str, text: str) -> bool:
    """Whether the name a cross-file problem is about ('there is no flow called 'x'') appears in `text`."""
    names = re.findall(r"'([^']+)'", message)
    return not names or re.search(rf"(?<![\w.]){re.escape(names[0].split('.')[-1])}(?!\w)", text) is not None


def _build(docs: list[Document]) -> Built | None:
    """Build from files that have schema mistakes too; None if the builder trips over them."""
    try:
        return Builder(docs).build()
    except Exception:  # a shape the schema already reported; the clean files are built instead
        log.debug("could not build past the schema mistakes", exc_info=True)
        return None


def load_bot_or_raise(
    paths: Sequence[Path | str],
    *,
    start: str,
    default_language: str,
    session_timeout: float,
    timezone: str,
    env: Mapping[str, str],
    handoff_timeout: float = 4 * 3600.0,
    stop_words: Sequence[str] = (),
) -> Bot:
    """Like `load_bot`, but raise FlowError listing every problem when there is any error."""
    bot, problems = load_bot(paths, start=start, default_language=default_language,
                             session_timeout=session_timeout, timezone=timezone, env=env,
                             handoff_timeout=handoff_timeout, stop_words=stop_words)
    if any(p.severity == "error" for p in problems):
        raise FlowError(problems)
    return bot


def load_configured(
    settings: BotSettings, path: Path | Sequence[Path] | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[Bot, list[Problem]]:
    """The flows the settings name (or those at `path`), with the template environment from `environ`."""
    paths = [settings.flows] if path is None else [path] if isinstance(path, Path) else list(path)
    bot, problems = load_bot(
        paths, start=settings.start_flow, default_language=settings.default_language,
        session_timeout=settings.session_timeout, timezone=settings.timezone,
        env=template_env(os.environ if environ is None else environ, settings.env), env_allowed=settings.env,
        handoff_timeout=settings.handoff_timeout, stop_words=settings.stop_words,
    )
    if not settings.desk and not any(p.severity == "error" for p in problems):
        problems.extend(_no_desk(bot, settings.handoff_timeout))
    return bot, problems


def _no_desk(bot: Bot, timeout: float) -> list[Problem]:
    """A warning on each handoff step when nobody can answer: the customer only waits for the timeout."""
    return [
        Problem(
            f"this step hands the customer to a person, but the handoff desk is off, so nobody can answer or give "
            f"the conversation back; the customer waits {timeout / 60:g} minutes (bot.handoff_timeout_minutes) "
            "for nothing",
            step.where.file, step.where.line, f"{flow.name}/{step.key}",
            "set WABOT_ADMIN_TOKEN (admin.token in config.yaml) and answer with `wabot handoff`",
            severity="warning",
        )
        for flow in bot.flows.values() for step in flow.steps if isinstance(step.action, Handoff)
    ]
