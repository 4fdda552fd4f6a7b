"""X-Forwarded-For is believed only from the proxies in server.trusted_proxies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.apptools import start
from tests.fakegraph import FakeGraph


async def refused_from(aiohttp_client: Any, tmp_path: Any, fake: FakeGraph, caplog: pytest.LogCaptureFixture,
                       trusted: str, forwarded: str) -> str:
    client = await start(aiohttp_client, tmp_path, fake, f"server: {{trusted_proxies: {trusted}}}\n")
    caplog.clear()
    resp = await client.post("/webhook/whatsapp", data=b"{}", headers={
        "X-Hub-Signature-256": "sha256=0", "X-Forwarded-For": forwarded})
    assert resp.status == 401
    [line] = [r.getMessage() for r in caplog.records if "webhook refused" in r.getMessage()]
    return line.rsplit("(from ", 1)[1].rstrip(")")


@pytest.mark.parametrize(("trusted", "forwarded", "shown"), [
    ("[]", "203.0.113.9", "127.0.0.1"),  # no proxy configured: the header is anyone's to write
    ("[127.0.0.1]", "203.0.113.9", "203.0.113.9"),
    ("['127.0.0.0/8', 10.0.0.2]", "198.51.100.7, 203.0.113.9, 10.0.0.2", "203.0.113.9"),  # the last untrusted hop
    ("[10.0.0.2]", "203.0.113.9", "127.0.0.1"),  # the peer itself is not a trusted proxy
])
async def test_the_log_names_the_client_behind_a_trusted_proxy_only(
    aiohttp_client: Any, tmp_path: Any, fake: FakeGraph, caplog: pytest.LogCaptureFixture,
    trusted: str, forwarded: str, shown: str,
) -> None:
    assert await refused_from(aiohttp_client, tmp_path, fake, caplog, trusted, forwarded) == shown

