from __future__ import annotations

import pytest

from tests.support.procs import Procs


@pytest.fixture
def procs(tmp_path, request):
    """Real logmesh processes; all killed at teardown, their logs shown when the test failed."""
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(p.logs_of_all())
        p.close()
