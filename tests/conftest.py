"""Shared by every test package: each test's report on its item (``item.rep_call``), so
fixtures that start real processes print their logs only when the test failed."""

from __future__ import annotations

import signal

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


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """A test that runs a server's stop in this process (``cli.serve`` ignores a second
    SIGINT/SIGTERM until the process ends) left SIGINT ignored for every later test, and
    every process those start inherits it: `logmesh tail -f` then never saw its Ctrl-C."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)
