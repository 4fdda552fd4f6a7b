"""GraphClient against FakeGraph: the request Meta gets, and every kind of failure classified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakegraph import EXPIRED, RATE_LIMIT, WINDOW_CLOSED, FakeGraph, meta_error
from wabot.errors import GraphError
from wabot.whatsapp import outbound as o
from wabot.whatsapp.graph import GraphClient, error_from_response

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
    bodies: list[object] = [None, "", [], {"error": "x"}, {"error": {"code": "190"}}, 42]
    for body in bodies:
        err = error_from_response(500, body)
        assert isinstance(err, GraphError) and err.retryable


async def test_a_token_echoed_back_by_a_proxy_is_cut_out(fake: FakeGraph, client: GraphClient) -> None:
    fake.script(502, text=f"<html><body>Bad Gateway for Authorization: Bearer {TOKEN}</body></html>")
    err = await failure(fake, client)  # asserts the token is absent
    assert "[token]" in str(err) and err.retryable


async def test_a_closed_port_is_retryable_with_status_0() -> None:
    async with FakeGraph(token=TOKEN) as gone:
        url = gone.url
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, base_url=url, version="v25.0", phone_number_id="123456", token=TOKEN,
                             timeout=2)
        with pytest.raises(GraphError) as caught:
            await client.check()
    assert caught.value.status == 0 and caught.value.retryable and TOKEN not in str(caught.value)
    assert "no answer from the Graph API" in str(caught.value)


async def test_a_success_without_message_id_is_an_error_not_retried(fake: FakeGraph, client: GraphClient) -> None:
    fake.script(200, {"messaging_product": "whatsapp", "messages": []})
    err = await failure(fake, client)
    assert err.status == 200 and not err.retryable and "without the message id" in str(err)


async def test_check_with_an_expired_token_is_an_auth_error(fake: FakeGraph, client: GraphClient) -> None:
    fake.token = "another-token"
    with pytest.raises(GraphError) as caught:
        await client.check()
    assert caught.value.auth and fake.requests[0].path == "/v25.0/123456"
    assert TOKEN not in str(caught.value)


async def test_a_malformed_body_is_refused_even_when_a_failure_is_scripted(
    fake: FakeGraph, client: GraphClient
) -> None:
    fake.script(429, RATE_LIMIT)
    with pytest.raises(GraphError) as caught:
        await client.send_body({"messaging_product": "whatsapp", "type": "text", "text": {"body": "no recipient"}})
    assert caught.value.code == 100 and not caught.value.retryable
    assert len(fake.violations) == 1 and len(fake.answers) == 1  # the scripted 429 is still waiting
    with pytest.raises(GraphError) as scripted:
        await client.send(o.Recipient("84912345678"), o.Text("ok"))
    assert scripted.value.code == 130429 and scripted.value.retryable


@pytest.mark.parametrize(("status", "code", "subcode", "kind"), [
    (401, 190, 460, "auth"), (400, 102, None, "auth"), (401, 0, None, "auth"), (401, None, None, "auth"),
    (400, 131057, None, "retry"), (500, 133004, None, "retry"), (400, 131000, None, "retry"),
    (400, 131016, None, "retry"), (400, 4, None, "retry"), (400, 17, None, "retry"), (400, 80007, None, "retry"),
    (400, 1, None, "retry"), (429, None, None, "retry"),
    (400, 131026, None, "permanent"), (400, 131030, None, "permanent"), (400, 131051, None, "permanent"),
    (400, 132001, None, "permanent"), (403, 200, None, "permanent"), (400, 131048, None, "permanent"),
])
def test_meta_codes_are_classified(status: int, code: int | None, subcode: int | None, kind: str) -> None:
    body = meta_error(code, f"(#{code}) something", subcode=subcode) if code is not None else {"oops": True}
    err = error_from_response(status, body)
    assert ("auth" if err.auth else "retry" if err.retryable else "permanent") == kind
    assert (err.code, err.subcode) == (code, subcode)
    if code is not None:
        assert f"Graph API error {code}" in str(err) and "fbtrace_id AbCdEf" in str(err)
