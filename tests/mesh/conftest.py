import pytest

from tests.support.mesh import mesh  # noqa: F401  (the fixture)
from tests.support.procs import Procs


@pytest.fixture
def procs(tmp_path):
    """Real logmesh processes on free ports; all stopped at teardown."""
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.close()
