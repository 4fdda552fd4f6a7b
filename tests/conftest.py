"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.apptools import PHONE_ID
from tests.fakegraph import FakeGraph


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    """A fake Graph API on loopback for the business number the test apps use."""
    async with FakeGraph(phone_number_id=PHONE_ID) as graph:
        yield graph
