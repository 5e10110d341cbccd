from __future__ import annotations

import pytest

from tests.durability.harness import LogsService


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "durability: fault injection over real logs processes (select with -m durability)")


@pytest.fixture
def service(tmp_path, request):
    """A logs service factory on ``tmp_path/data`` (not started); killed at teardown, its log
    shown when the test failed."""
    made: list[LogsService] = []

    def make(*args: str, data_dir=None) -> LogsService:
        svc = LogsService(tmp_path, data_dir or tmp_path / "data", *args)
        made.append(svc)
        return svc

    try:
        yield make
    finally:
        failed = getattr(request.node, "rep_call", None)
        for svc in made:
            if failed is not None and failed.failed:
                print(svc.log_tail())
            svc.close()
