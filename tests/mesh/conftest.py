import pytest

from logmesh.mesh.http_server import HttpSite
from logmesh.security import Limits
from logmesh.security_http import HttpCounters
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


@pytest.fixture
async def http_site():
    """``start(handler, max_body=, body_timeout=, **limits)``: the gateway's HTTP site serving
    ``handler`` on a free port of 127.0.0.1; every one stopped at teardown."""
    sites: list[HttpSite] = []

    async def start(handler, *, max_body: int = 1024 * 1024, body_timeout: float = 60,
                    **limits) -> HttpSite:
        site = HttpSite(handler, "127.0.0.1", 0, limits=Limits(**limits),
                        counters=HttpCounters(), max_body=max_body, body_timeout=body_timeout)
        await site.start()
        sites.append(site)
        return site

    yield start
    for site in sites:
        await site.stop(grace=0.1)
