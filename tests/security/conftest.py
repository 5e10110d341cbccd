from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from tests.support.logs import logs_starter
from tests.support.mesh import mesh  # noqa: F401  (the fixture)

TOKEN = "test-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
WRITE = "write-token-0123456789abcdef"


@pytest.fixture
async def start_logs(tmp_path):
    """In-process logs services (port 0, no distributor, no compaction); all stopped at teardown."""
    async with logs_starter(tmp_path, compact=False) as start:
        yield start


class PKI:
    """A CA and a server certificate for 127.0.0.1/localhost, written as PEM files."""

    def __init__(self, root: Path, name: str = "ca") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name=f"logmesh test {name}")
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = root / f"{name}.pem"
        self.cert_file = root / f"{name}-server.pem"
        self.key_file = root / f"{name}-server.key"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert.private_key_pem.write_to_path(str(self.key_file))
        with open(self.cert_file, "wb") as f:
            for blob in self.cert.cert_chain_pems:
                f.write(blob.bytes())


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"), "good")


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory) -> PKI:
    """A second, unrelated CA: a client that trusts only it must refuse our servers."""
    return PKI(tmp_path_factory.mktemp("pki-other"), "other")
