from __future__ import annotations

import pytest

from tests.logs.sinks.fake_es import FakeElasticsearch


@pytest.fixture
async def fake_es():
    fake = await FakeElasticsearch().start()
    try:
        yield fake
    finally:
        await fake.stop()
