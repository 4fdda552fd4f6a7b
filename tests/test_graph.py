"""GraphClient against FakeGraph: the request Meta gets, and every kind of failure classified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from fakegraph import EXPIRED, RATE_LIMIT, WINDOW_CLOSED, FakeGraph, meta_error

from wabot import outbound as o
from wabot.errors import GraphError
from wabot.graph import GraphClient, error_from_response

TOKEN = "EAAG-secret-token-never-logged"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(token=TOKEN) as graph:
        yield graph


@pytest.fixture
async def client(fake: FakeGraph) -> AsyncIterator[GraphClient]:
    async with aiohttp.ClientSession() as session:
        yield GraphClient(session, base_url=fake.url, version="v25.0", phone_number_id="123456", token=TOKEN,
                          timeout=0.5)


async def test_send_posts_to_the_versioned_number_with_the_bearer_token(fake: FakeGraph, client: GraphClient) -> None:
    wamid = await client.send(o.Recipient("84912345678"), o.Text("Chào"))
    [seen] = fake.requests
    assert wamid == seen.wamid
    assert seen.path == "/v25.0/123456/messages"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.body["text"]["body"] == "Chào"
    await client.mark_read(o.MarkRead(wamid, typing=True))
    assert fake.violations == []


async def test_check_reads_the_number(client: GraphClient) -> None:
    assert (await client.check())["verified_name"] == "Trà Sen"


async def failure(fake: FakeGraph, client: GraphClient) -> GraphError:
    with pytest.raises(GraphError) as caught:
        await client.send(o.Recipient("84912345678"), o.Text("Chào"))
    assert TOKEN not in str(caught.value)
    return caught.value


async def test_expired_token_is_an_auth_error_with_the_fix(fake: FakeGraph, client: GraphClient) -> None:
    fake.script(401, EXPIRED)
    err = await failure(fake, client)
    assert err.auth and not err.retryable and err.code == 190 and err.subcode == 463
    assert "WHATSAPP_TOKEN" in str(err) and "fbtrace_id AbCdEf" in str(err)


@pytest.mark.parametrize(("status", "body"), [
    (400, RATE_LIMIT),
    (400, meta_error(131056, "(#131056) pair rate limit")),
    (429, None),
    (503, {"error": {"message": "Service unavailable", "code": 2}}),
])
async def test_rate_limits_and_outages_are_retryable(
    fake: FakeGraph, client: GraphClient, status: int, body: object
) -> None:
    fake.script(status, body if body is not None else {"nothing": "here"})
    err = await failure(fake, client)
    assert err.retryable and not err.auth


async def test_an_html_error_page_timeout_and_reset_are_retryable(fake: FakeGraph, client: GraphClient) -> None:
    fake.script(502, text="<html><body>Bad Gateway</body></html>")
    err = await failure(fake, client)
    assert err.retryable and err.status == 502 and "Bad Gateway" in str(err)
    fake.script(delay=2.0)
    err = await failure(fake, client)
    assert err.retryable and err.status == 0 and "0.5 seconds" in str(err)
    fake.script(disconnect=True)
    err = await failure(fake, client)
    assert err.retryable and err.status == 0


@pytest.mark.parametrize(("body", "code"), [
    (WINDOW_CLOSED, 131047),
    (meta_error(100, "(#100) Invalid parameter"), 100),
    (meta_error(10, "(#10) Application does not have permission"), 10),
])
async def test_permanent_errors_are_not_retried(fake: FakeGraph, client: GraphClient, body: object, code: int) -> None:
    fake.script(400, body)
    err = await failure(fake, client)
    assert (err.code, err.retryable, err.auth) == (code, False, False)


def test_permission_errors_say_which_permissions() -> None:
    err = error_from_response(403, meta_error(200, "(#200) Permissions error"))
    assert "whatsapp_business_messaging" in str(err) and not err.retryable


def test_a_body_that_is_not_metas_shape_never_crashes() -> None:
    for body in (None, "", [], {"error": "x"}, {"error": {"code": "190"}}, 42):
        err = error_from_response(500, body)
        assert isinstance(err, GraphError) and err.retryable
