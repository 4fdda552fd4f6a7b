"""Who sent a request: the peer, or behind a reverse proxy the client it names in X-Forwarded-For.

X-Forwarded-For is believed only from the proxies in server.trusted_proxies: anyone can write the
header, so from anyone else it would let a client choose the address the log shows.
"""

from __future__ import annotations

import ipaddress
from functools import cache

from aiohttp import web

from wabot.server.keys import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(request: web.Request) -> str:
    """The client's address: walking X-Forwarded-For from the right, the first hop that is not a trusted proxy."""
    peer = request.remote or "?"
    networks = _networks(request.app[SETTINGS].server.trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer
