"""The admin listener: the desk API and /metrics on admin.host/admin.port, never on the public port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import DEMO, ROOT
from tests.apptools import admin, start
from tests.fakegraph import FakeGraph
from wabot.server.adminsite import ADMIN_URL


async def test_the_admin_listener_is_apart_from_the_public_one(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    client = await start(aiohttp_client, tmp_path, fake, "admin: {token: a-long-enough-token}\n")
    url = client.app[ADMIN_URL]
    assert url.startswith("http://127.0.0.1:") and not url.endswith(f":{client.port}")
    async with admin(client) as session:
        assert (await session.get("/metrics")).status == 200
        listed = await session.get("/admin/handoffs", headers={"Authorization": "Bearer a-long-enough-token"})
        assert listed.status == 200 and await listed.json() == {"handoffs": []}
        assert (await session.post("/webhook/whatsapp", data=b"{}")).status == 404  # Meta's side is not here
    assert (await client.get("/metrics")).status == 404
    assert (await client.get("/admin/handoffs")).status == 404


def test_a_taken_admin_port_stops_start_up_with_a_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.yaml"
        config.write_text(
            "server: {host: 127.0.0.1, port: 0}\n"
            f"database: {{path: '{tmp_path / 'wabot.db'}'}}\n"
            f"admin: {{host: 127.0.0.1, port: {port}}}\n"
            f"bot: {{flows: '{DEMO}'}}\n", encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "wabot", "--config", str(config)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port} for the admin listener" in done.stderr
    assert "WABOT_ADMIN_PORT" in done.stderr and "Traceback" not in done.stderr
