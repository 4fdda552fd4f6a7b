"""/api/v1/campaigns: create with per-recipient parameters, follow the report, pause and cancel."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.api import bearer, started
from tests.apptools import admin
from tests.fakegraph import FakeGraph


async def test_a_campaign_through_the_api(aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, "outbox: {rate_per_second: 100}\n", db=db_target)
    recipients = [{"to": str(84_900_000_000 + i), "parameters": [f"Khách {i}"]} for i in range(30)]
    body = {"name": "tết", "template": {"name": "tet_promo", "language": "vi"},
            "recipients": [*recipients, {"to": "nope"}, recipients[0]]}
    async with admin(client) as s:
        resp = await s.post("/api/v1/campaigns", json=body, headers=bearer(key))
        made = await resp.json()
        assert resp.status == 202 and made["recipients"] == 30 and made["skipped"] == 2
        cid = made["id"]
        async with asyncio.timeout(10):
            while True:
                report = await (await s.get(f"/api/v1/campaigns/{cid}", headers=bearer(key))).json()
                if report["status"] == "done" and report["waiting"] == 0:
                    break
                await asyncio.sleep(0.05)
        assert report["sent"] == 30 and report["skipped"] == {"invalid number": 1, "duplicate": 1}
        assert report["name"] == "tết" and report["failed_by_code"] == {}
        resp = await s.post(f"/api/v1/campaigns/{cid}/pause", headers=bearer(key))
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "campaign_finished"
        resp = await s.post("/api/v1/campaigns", headers=bearer(key),
                            json={"template": {"name": "x", "parameters": ["a"]}, "recipients": recipients})
        assert resp.status == 400 and "own" in (await resp.json())["error"]["message"]
        resp = await s.post("/api/v1/campaigns", headers=bearer(key),
                            json={"template": {"name": "x"}, "recipients": []})
        assert resp.status == 400
        resp = await s.get("/api/v1/campaigns/77", headers=bearer(key))
        assert resp.status == 404
        big = {"template": {"name": "tet_promo"}, "recipients": [{"to": str(84_910_000_000 + i)} for i in range(500)]}
        cid = (await (await s.post("/api/v1/campaigns", json=big, headers=bearer(key))).json())["id"]
        await asyncio.sleep(0.3)
        resp = await s.post(f"/api/v1/campaigns/{cid}/cancel", headers=bearer(key))
        assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
        report = await (await s.get(f"/api/v1/campaigns/{cid}", headers=bearer(key))).json()
        assert report["status"] == "cancelled" and report["skipped"]["cancelled"] > 400
