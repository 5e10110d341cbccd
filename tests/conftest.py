"""Shared by every test package: each test's report on its item (``item.rep_call``), so
fixtures that start real processes print their logs only when the test failed."""

from __future__ import annotations

import pytest

from tests.support.logs import logs_starter


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
async def start_logs(tmp_path):
    """Start in-process logs services (port 0, no distributor); all stopped at teardown."""
    async with logs_starter(tmp_path) as start:
        yield start
