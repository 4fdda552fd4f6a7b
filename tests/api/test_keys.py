"""API keys: made by the CLI and shown once, kept hashed, checked on every request; JSON errors; OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
from openapi_spec_validator import validate

from tests import ROOT
from tests.api import bearer, started
from tests.apptools import admin, config
from tests.fakegraph import FakeGraph
from wabot import api
from wabot.api.keys import digest
from wabot.server.adminsite import ADMIN_APP


def test_apikey_create_prints_the_key_alone_on_its_last_line_and_keeps_only_a_hash(
    tmp_path: Path, db_target: str
) -> None:
    cfg = config(tmp_path, "http://127.0.0.1:9", db=db_target)

    def wabot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wabot", "--config", str(cfg), "apikey", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    made = wabot("create", "erp")
    assert made.returncode == 0, made.stderr
    key = made.stdout.splitlines()[-1]
    assert key.startswith("wbk_") and len(key) > 40 and " " not in key
    if db_target.startswith("postgresql://"):
        assert kept(db_target, "SELECT COUNT(*) FROM api_keys WHERE hash = $1", digest(key)) == 1
        assert kept(db_target, "SELECT COUNT(*) FROM api_keys WHERE hash = $1", key) == 0  # only the hash
    else:
        raw = (tmp_path / "wabot.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("wabot.db-*"))
        assert key.encode() not in raw  # only the hash is kept
    again = wabot("create", "erp")
    assert again.returncode == 1 and "already a key named 'erp'" in again.stderr
    assert "erp" in wabot("list").stdout and "live" in wabot("list").stdout
    assert wabot("create", "bad name!").returncode == 2
    assert wabot("revoke", "erp").returncode == 0
    assert "revoked" in wabot("list").stdout
    assert kept(db_target, "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL") == 1


def kept(target: str, query: str, *args: Any) -> Any:
    """One value from the database the command wrote to, SQLite or PostgreSQL."""
    if target.startswith("postgresql://"):
        async def fetch() -> Any:
            conn = await asyncpg.connect(target)
            try:
                return await conn.fetchval(query, *args)
            finally:
                await conn.close()

        return asyncio.run(fetch())
    with contextlib.closing(sqlite3.connect(target)) as db:
        return db.execute(query.replace("$1", "?"), args).fetchone()[0]


async def test_requests_need_a_live_key_and_errors_are_json_with_a_code(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    async with admin(client) as s:
        for headers in ({}, {"Authorization": "Bearer wbk_wrong"}, {"Authorization": key}):
            resp = await s.get("/api/v1/messages/1", headers=headers)
            body = await resp.json()
            assert resp.status == 401 and body["error"]["code"] == "unauthorized"
            assert "wabot apikey create" in body["error"]["message"]
        resp = await s.get("/api/v1/messages/999", headers=bearer(key))
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
        resp = await s.get("/api/v1/nothing-here", headers=bearer(key))
        assert resp.status == 404 and "openapi.json" in (await resp.json())["error"]["message"]
        resp = await s.delete("/api/v1/messages", headers=bearer(key))
        assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"
        resp = await s.post("/api/v1/messages", data=b"{not json", headers=bearer(key))
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"
    assert (await client.post("/api/v1/messages", json={})).status == 404  # not on the public port


async def test_the_openapi_description_is_served_valid_and_names_every_route(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    client, _ = await started(aiohttp_client, tmp_path, fake)
    async with admin(client) as s:
        resp = await s.get("/api/v1/openapi.json")  # no key needed to read the description
        served = await resp.json()
    assert resp.status == 200 and served == api.openapi()
    validate(served)
    admin_app = client.app[ADMIN_APP]
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in admin_app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/v1") and r.method != "HEAD"
    }
    described = {(m, p) for p, ops in served["paths"].items() for m in ops}
    assert routes == described
