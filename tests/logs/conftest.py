from __future__ import annotations

import pytest

from .helpers import logs_starter


@pytest.fixture
async def start_logs(tmp_path):
    """Start in-process logs services (port 0, no distributor); all stopped at teardown."""
    async with logs_starter(tmp_path) as start:
        yield start
