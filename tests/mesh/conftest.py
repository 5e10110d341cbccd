from __future__ import annotations

import pytest

from .harness import Mesh


@pytest.fixture
async def mesh():
    m = Mesh()
    try:
        yield m
    finally:
        await m.close()
