"""Http-step addresses: filling values into a URL safely, and which addresses a request may reach.

The threat: a customer's text put into an http step's URL must not be able to move the request to
another path, query or host of the shop's API (where the shop's token goes along with it), nor make
the bot fetch an internal address (a cloud metadata service, an admin port) and send the answer back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import quote

from yarl import URL

__all__ = ["CLOSE", "OPEN", "RAW", "PathValue", "allowed", "assemble", "is_public", "mark", "problem"]

OPEN, CLOSE, RAW = "\x00", "\x01", "\x02"  # around each `{{ value }}` while a URL template renders
_MARKS = str.maketrans("", "", OPEN + CLOSE + RAW)


class PathValue(str):
    """A value the author inserts as several path segments on purpose (`{{ path | urlpath }}`)."""


def mark(value: object) -> str:
    """Jinja's finalize for URL templates: wrap each value so `assemble` knows where it was filled in."""
    text = str(value).translate(_MARKS)
    return f"{OPEN}{RAW if isinstance(value, PathValue) else ''}{text}{CLOSE}"


def assemble(rendered: str) -> str:
    """The URL from a marked render: values in the path, query or fragment encoded as one segment or value.

    A value at the very start (`{{ env.SHOP_API }}/orders/...`) or inside the scheme and host is the
    address the author configured and is kept as written; the request checks decide if it may be reached.
    """
    out: list[str] = []
    rest = rendered
    while OPEN in rest:
        before, _, tail = rest.partition(OPEN)
        value, _, rest = tail.partition(CLOSE)
        out.append(before)
        so_far = "".join(out)
        if not so_far or not _past_host(so_far):
            out.append(value.removeprefix(RAW))
        elif value.startswith(RAW) and "?" not in so_far and "#" not in so_far:
            out.append("/".join(_segment(part) for part in value.removeprefix(RAW).split("/")))
        else:
            out.append(_segment(value))
    out.append(rest)
    return "".join(out).strip()


def _past_host(text: str) -> bool:
    """Whether the URL written so far has reached its path, query or fragment."""
    _, sep, after = text.partition("://")
    return bool(sep) and any(c in after for c in "/?#")


def _segment(value: str) -> str:
    if value in (".", ".."):
        return value.replace(".", "%2E")  # a whole segment of dots would climb out of the author's path
    return quote(value, safe="")


def problem(url: str, *, allowed_hosts: Iterable[str] = ()) -> str:
    """Why the request must not go to `url`, in plain words; "" when it may."""
    try:
        parsed = URL(url, encoded=True)
    except ValueError:
        return "the address is not a valid URL"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "the address must start with http:// or https:// and name a host"
    if any(part.replace("%2E", ".").replace("%2e", ".") in (".", "..") for part in parsed.raw_parts):
        return "the address has a '.' or '..' segment"
    if parsed.user or parsed.password:
        return "the address may not carry a user name or password"
    if not is_public(parsed.host) and not allowed(parsed.host, parsed.port, allowed_hosts):
        return f"{parsed.host} is a private address (add it to http.private_hosts to allow it)"
    return ""


def allowed(host: str, port: int | None, allowed_hosts: Iterable[str]) -> bool:
    """Whether the config's http.private_hosts names `host` (any port), `host:port`, or is "*" (any)."""
    name = host.strip("[]").lower()
    return any(entry in ("*", name, f"{name}:{port}") for entry in allowed_hosts)


def is_public(host: str) -> bool:
    """False for loopback, private, link-local, reserved and unspecified addresses (and `localhost`)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        ip = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return True  # a name: its addresses are checked when it is resolved
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
