"""ES bulk ``_id``, a stateful property test over two real ``logmesh logs`` processes sharing one
data directory (two workers' streams, as ``--workers 2``): bulk bodies with ``_id``
(``create`` and ``index``), a client's retries of any earlier body to either process, kill -9
of either (sometimes while a body is in flight), graceful restarts, sealing and compaction,
the ids' journal damaged on disk (emptied, cut, overwritten) between two starts, and
documents without an ``_id`` that carry ``labels.es.id`` themselves (an id a later body uses).

Invariant after every step: every ``_id`` acknowledged (an item answered 201, 409 or 200) is
stored exactly once, and no ``_id`` is stored twice. Bounded like test_store_machine.py:
``DURABILITY_EXAMPLES`` (default 3) runs of ``DURABILITY_STEPS`` (default 12) steps (~3-6
minutes on 2 busy cores: each step drives real processes).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.durability.machines import TwoProcesses, assert_stored_once, machine_settings
from tests.support.procs import store_events

pytestmark = [pytest.mark.durability, pytest.mark.slow]

ANSWERED = {201, 200, 409}  # stored now, or stored before: the clients count each as done


def bulk_body(action: str, ids: list[str]) -> bytes:
    return b"".join(orjson.dumps({action: {"_index": "app", "_id": i}}) + b"\n" +
                    orjson.dumps({"message": f"event {i}"}) + b"\n" for i in ids)


class IdsMachine(TwoProcesses):
    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[tuple[str, list[str]]] = []
        self.acked: set[str] = set()
        self.next_id = 0

    def post(self, which: int, action: str, ids: list[str]) -> None:
        status, answer = self.svcs[which].request("POST", "/_bulk", bulk_body(action, ids))
        assert status == 200, (status, answer)
        for item, doc_id in zip(answer["items"], ids, strict=True):
            got = item[action]
            assert got["_id"] == doc_id and got["status"] in ANSWERED, got
            if action == "create":
                assert got["status"] != 200, got
            self.acked.add(doc_id)

    @rule(which=st.integers(0, 1), action=st.sampled_from(["create", "index"]), n=st.integers(1, 60))
    def bulk(self, which, action, n):
        ids = [f"{self.run}-{self.next_id + i}" for i in range(n)]
        self.next_id += n
        self.bodies.append((action, ids))
        self.post(which, action, ids)

    @rule(which=st.integers(0, 1), pick=st.floats(0, 1))
    def retry(self, which, pick):
        if self.bodies:
            action, ids = self.bodies[int(pick * (len(self.bodies) - 1))]
            self.post(which, action, ids)

    @rule(which=st.integers(0, 1), delay=st.floats(0, 0.08), n=st.integers(50, 400))
    def kill9_in_flight(self, which, delay, n):
        """A body sent and the process killed after ``delay`` s, answered or not: a later
        ``retry`` of it must find what was stored."""
        ids = [f"{self.run}-{self.next_id + i}" for i in range(n)]
        self.next_id += n
        self.bodies.append(("create", ids))
        svc = self.svcs[which]
        port = svc.http_port
        sender = threading.Thread(target=self._send_quietly, args=(port, ids), daemon=True)
        sender.start()
        time.sleep(delay)
        svc.kill9()
        sender.join(15)
        svc.start()

    def _send_quietly(self, port: int, ids: list[str]) -> None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/_bulk", bulk_body("create", ids), {"Content-Type": "application/x-ndjson"})
            resp = conn.getresponse()
            answer = orjson.loads(resp.read())
            if resp.status == 200:
                self.acked.update(i["create"]["_id"] for i in answer["items"]
                                  if i["create"]["status"] in ANSWERED)
        except (OSError, ValueError):
            pass  # killed before it answered: the body is the client's to retry
        finally:
            conn.close()

    @rule(which=st.integers(0, 1), n=st.integers(1, 5),
          how=st.sampled_from(["labels", "flat", "with_index", "ndjson"]))
    def own_es_labels(self, which, n, how):
        """Documents without an ``_id`` whose own labels name ids the next bodies will use: they
        were stored, and after a start taken for those ids' first copies (the real ones then
        answered as stored, and lost). Their answer is not checked here: the invariant is
        that each real ``_id`` acknowledged is stored, as its own event."""
        ids = [f"{self.run}-{self.next_id + i}" for i in range(n)]
        docs = [{"labels": {"es.id": i}} if how == "labels" else {"es.id": i} if how == "flat"
                else {"es.id": i, "es.index": "app"} for i in ids]
        if how == "ndjson":
            self.svcs[which].request("POST", "/v1/logs", b"\n".join(
                orjson.dumps({"message": f"mine {i}", **d}) for i, d in zip(ids, docs, strict=True)))
            return
        body = b"".join(orjson.dumps({"index": {"_index": "app"}}) + b"\n" +
                        orjson.dumps({"message": f"mine {i}", **d}) + b"\n" for i, d in zip(ids, docs, strict=True))
        status, _ = self.svcs[which].request("POST", "/_bulk", body)
        assert status == 200

    @rule(how=st.sampled_from(["empty", "cut", "overwrite"]), at=st.floats(0, 1),
          junk=st.binary(min_size=1, max_size=200))
    def damage_journal(self, how, at, junk):
        """Damage on disk, not a crash: both stopped, the journal emptied, cut at ``at`` or
        overwritten there with ``junk``, both started. The store still has every id, and a
        start must know them again (es_ids_store.py)."""
        for svc in self.svcs:
            svc.stop()
        journal = self.data / "es-ids" / "journal"
        text = journal.read_bytes() if journal.exists() else b""
        cut = int(at * len(text))
        journal.write_bytes({"empty": b"", "cut": text[:cut],
                             "overwrite": text[:cut] + junk + text[cut + len(junk):]}[how])
        for svc in self.svcs:
            svc.start()

    @invariant()
    def every_acked_id_stored_once(self):
        stored = Counter(e["labels"]["es.id"] for e in store_events(self.data)  # the real ones
                         if e.get("labels", {}).get("es.id", "").startswith(self.run)
                         and e.get("message") == f"event {e['labels']['es.id']}")
        assert_stored_once(stored, self.acked)

IdsMachine.TestCase.settings = machine_settings(3, 12)
TestIdsMachine = IdsMachine.TestCase
