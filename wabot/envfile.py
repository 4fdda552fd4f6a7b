"""The `.env` file: `KEY=value` lines put into the environment, never over a variable already set.

The same format as docker compose's `env_file` and python-dotenv's common subset: `# comments`, blank
lines, an optional `export ` in front, values optionally in single or double quotes. A few lines of
our own rather than a dependency; anything else in the file is an error naming the file and the line.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path

from wabot.errors import ConfigError

_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def parse(text: str, *, file: str) -> dict[str, str]:
    """The variables a `.env` text sets; ConfigError naming the file and line for a line that is not KEY=value."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            raise ConfigError(
                f"Line {number} of {file} is not KEY=value (for example WHATSAPP_TOKEN=EAAG...): {line[:40]!r}.",
                key="", file=file,
            )
        found[m.group(1)] = _value(m.group(2), number=number, file=file)
    return found


def _value(text: str, *, number: int, file: str) -> str:
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = text.find(quote, 1)
        if end < 0:
            raise ConfigError(f"Line {number} of {file} opens a {quote} quote and never closes it.", key="", file=file)
        return text[1:end]
    return re.sub(r"\s+#.*$", "", text).strip()  # an unquoted value ends at a ` # comment`


def load(path: Path, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Put the variables of `path` (when it exists) into the environment, keeping those already set.

    Returns the names it set.
    """
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The environment file {path} cannot be read: {exc}.", key="", file=str(path)) from None
    added = [name for name in parse(text, file=str(path)).items() if name[0] not in env]
    for name, value in added:
        env[name] = value
    return [name for name, _ in added]
