"""ES bulk ``_id`` with real processes: a retry stores nothing twice across ``--workers 2`` and
across a kill -9 and restart, and every acknowledged ``_id`` is stored exactly once (es_ids.py)."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter

import orjson
import pytest

from tests.durability.harness import compacted
from tests.support.procs import HOST, free_port, store_events, tagged_per_stream, wait_for

pytestmark = pytest.mark.slow  # real processes


def bulk_body(tag: str, first: int, n: int) -> bytes:
    return b"".join(orjson.dumps({"create": {"_index": "app", "_id": f"{tag}-{i}"}}) + b"\n" +
                    orjson.dumps({"message": f"{tag} {i}", "trace.id": f"{tag}-{i}"}) + b"\n"
                    for i in range(first, first + n))


def post_bulk(http_port: int, body: bytes, timeout: float = 10) -> dict:
    """One request on a new connection (the kernel picks the worker); raises on anything but 200."""
    conn = http.client.HTTPConnection(HOST, http_port, timeout=timeout)
    try:
        conn.request("POST", "/_bulk", body, {"Content-Type": "application/x-ndjson"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise OSError(f"status {resp.status}: {data[:200]!r}")
        return orjson.loads(data)
    finally:
        conn.close()


def statuses(answer: dict) -> Counter:
    return Counter(item["create"]["status"] for item in answer["items"])


def stored_ids(data_dir, tag: str) -> Counter:
    return Counter(e["labels"]["es.id"] for e in store_events(data_dir)
                   if e.get("labels", {}).get("es.id", "").startswith(tag + "-"))


def test_a_retry_on_the_other_worker_is_not_stored_again(procs, tmp_path):
    data = tmp_path / "data"
    port, http_port = free_port(), free_port()
    logs = procs.start("logs-workers", "logs", "--workers", "2", "--port", str(port),
                       "--http-port", str(http_port), "--standalone", "--data-dir", str(data))
    logs.wait_line(r"logs worker (\d+): TCP [\d.]+:(\d+)", count=2, timeout=30)
    tag = "w2"
    for k in range(12):
        body = bulk_body(tag, k * 50, 50)
        first = post_bulk(http_port, body)
        assert statuses(first) == {201: 50}
        for _ in range(4):  # the client's retries, each on a new connection: either worker
            assert statuses(post_bulk(http_port, body)) == {409: 50}
    ids = stored_ids(data, tag)
    assert len(ids) == 600 and set(ids.values()) == {1}
    per_stream = tagged_per_stream(data, tag)
    assert per_stream.get("w00") and per_stream.get("w01"), per_stream  # both workers stored some
    assert "Traceback" not in logs.log_text()


def test_kill9_mid_stream_every_acked_id_stored_once(procs, tmp_path):
    data = tmp_path / "data"
    port, http_port = free_port(), free_port()
    logs, _, _ = procs.logs(data, port=port, http_port=http_port)
    tag, per_body, bodies = "k9", 200, 60
    acked: list[str] = []
    done = threading.Event()
    errors: list[str] = []

    def client() -> None:  # a bulk helper with retries: the same body until it is answered
        try:
            for k in range(bodies):
                body = bulk_body(tag, k * per_body, per_body)
                deadline = time.monotonic() + 60
                while True:
                    try:
                        answer = post_bulk(http_port, body, timeout=5)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                if set(statuses(answer)) - {201, 409}:
                    errors.append(f"body {k}: {statuses(answer)}")
                acked.extend(item["create"]["_id"] for item in answer["items"])
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(repr(exc))
        finally:
            done.set()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    for kills in range(2):
        wait_for(lambda kills=kills: len(acked) >= (kills + 1) * 2_000 or done.is_set(), 60,
                 "acks before the kill")
        logs.kill9()
        time.sleep(0.2)
        logs, _, _ = procs.logs(data, port=port, http_port=http_port)
    thread.join(120)
    assert done.is_set() and not errors, errors
    assert len(acked) == per_body * bodies
    ids = stored_ids(data, tag)
    assert set(ids) == set(acked)
    assert [i for i, n in ids.items() if n != 1] == []


def damage_journal(data_dir, how: str) -> None:
    """Damage on disk (a bad sector, a bad copy), not a crash: a crash tears only the end."""
    journal = data_dir / "es-ids" / "journal"
    text = journal.read_bytes()
    assert text, "the ids were journaled"
    journal.write_bytes({"empty": b"", "cut": text[:len(text) // 2],
                         "garbage": bytes(range(256)) * (len(text) // 256 + 1)}[how])


def put_doc(http_port: int, index: str, doc_id: str) -> int:
    conn = http.client.HTTPConnection(HOST, http_port, timeout=10)
    try:
        conn.request("PUT", f"/{index}/_doc/{doc_id}", orjson.dumps({"message": doc_id}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@pytest.mark.parametrize(("how", "compact"), [("empty", False), ("cut", False), ("garbage", True)])
def test_a_damaged_journal_still_knows_what_the_store_has(procs, tmp_path, how, compact):
    """The window is rebuilt from the store at start: a retry after the journal was emptied,
    cut or overwritten is not stored twice, whether its first copy is in a segment or, after
    compaction, in a Parquet file (outside20)."""
    data = tmp_path / "data"
    extra = ("--max-segment-size", "16KB") if compact else ()
    logs, _, http_port = procs.logs(data, *extra)
    tag = f"dj{how}"
    bodies = [bulk_body(tag, k * 100, 100) for k in range(3)]
    for body in bodies:
        assert statuses(post_bulk(http_port, body)) == {201: 100}
    assert put_doc(http_port, "one", f"{tag}-solo") == 201
    logs.stop()
    if compact:
        logs, _, http_port = procs.logs(data, *extra)  # a start seals; compaction follows
        wait_for(lambda: compacted(data) and list((data / "parquet").glob("*.parquet")), 60, "compaction")
        logs.stop()
    damage_journal(data, how)
    logs, _, http_port = procs.logs(data, *extra)
    for body in bodies:
        assert statuses(post_bulk(http_port, body)) == {409: 100}
    assert put_doc(http_port, "one", f"{tag}-solo") == 200  # index of a stored _id: "updated"
    assert put_doc(http_port, "two", f"{tag}-solo") == 201  # another index: its own ids
    ids = stored_ids(data, tag)
    assert len(ids) == 301 and [i for i, n in ids.items() if n != (2 if i == f"{tag}-solo" else 1)] == []
    assert "Traceback" not in logs.log_text()


def post(http_port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, http_port, timeout=10)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/x-ndjson"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_a_documents_own_es_labels_are_not_taken_for_an_id_after_a_restart(procs, tmp_path):
    """A document without an ``_id`` that carries ``labels.es.id`` itself (or ``es.index``) was
    stored with it, and after the next start taken for one stored under that ``_id``: a real
    ``PUT`` of that ``_id`` was then answered 200 and not stored (an acknowledged event lost).
    Such a document is refused (400, reason ``reserved_label``), by the Elasticsearch routes
    and by NDJSON's."""
    data = tmp_path / "data"
    logs, _, http_port = procs.logs(data)
    forged = orjson.dumps({"index": {"_index": "app"}}) + b"\n" + \
        orjson.dumps({"message": "mine", "labels": {"es.id": "fx-1"}}) + b"\n"
    answer = post_bulk(http_port, forged)
    ndjson, _ = post(http_port, "/v1/logs", orjson.dumps({"message": "m", "es.id": "fx-2", "es.index": "app"}))
    other, _ = post(http_port, "/app/_doc", orjson.dumps({"message": "m", "es.index": "other"}))
    logs.stop()
    logs, _, http_port = procs.logs(data)
    assert put_doc(http_port, "app", "fx-1") == 201  # was 200, and not stored
    assert put_doc(http_port, "app", "fx-2") == 201
    assert put_doc(http_port, "app", "fx-1") == 200  # the real one, now stored
    logs.stop()
    assert stored_ids(data, "fx") == {"fx-1": 1, "fx-2": 1}
    assert answer["errors"] and answer["items"][0]["index"]["status"] == 400
    assert "reserved_label" in answer["items"][0]["index"]["error"]["reason"]
    assert ndjson >= 400 and other == 400
    assert [e for e in store_events(data) if e.get("labels", {}).get("es.index") == "other"] == []
    assert "Traceback" not in logs.log_text()
