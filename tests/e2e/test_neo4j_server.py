"""What only a real Neo4j server has: native temporal values, the vector index, clear connection
errors, concurrent loaders, a connection dropped mid-batch, a loader killed mid-load, a restart.

Runs against the server that ``tools/run_tests.sh`` (``make test``) starts (``NEO4J_URI``); the
restart test starts its own through ``tools/neo4j.sh``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.base import (
    Direction,
    EdgeRecord,
    NodeRecord,
    StoreError,
    StoreUnavailableError,
)
from tests.conftest import neo4j_skip_reason
from tests.graphs import ts

pytestmark = pytest.mark.neo4j

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def _env() -> tuple[str, str, str | None]:
    reason = neo4j_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD")


def _open(uri: str | None = None):  # type: ignore[no-untyped-def]
    from store.neo4j_store import Neo4jStore

    env_uri, user, pw = _env()
    return Neo4jStore(uri or env_uri, user, pw, os.environ.get("NEO4J_DATABASE"))


@pytest.fixture
def n4j() -> Iterator:  # type: ignore[type-arg]
    s = _open()
    s.clear()
    try:
        yield s
    finally:
        s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- temporal values ----------------------------------------------------------------------------


def test_times_are_native_datetimes_keeping_their_offsets(n4j) -> None:  # type: ignore[no-untyped-def]
    with n4j.transaction() as tx:
        tx.upsert_nodes([
            NodeRecord(id="L1", cls="Lot", props={"quantity": 1.0, "produced_at": "2026-03-02T06:00:00+01:00"},
                       valid_from=ts("2026-03-01T23:30:00-05:00")),
            NodeRecord(id="PO1", cls="ProductionOrder", props={"quantity": 1.0}),
        ])
        tx.upsert_edges([EdgeRecord(src="PO1", rel="PRODUCED", dst="L1", props={"quantity": 1.0},
                                    valid_from=ts("2026-03-02T05:00:00Z"))])
    [row] = n4j.run_read(
        "MATCH (po:ProductionOrder)-[e:PRODUCED]->(n:Lot {id: 'L1'}) RETURN valueType(n.produced_at) AS pt, "
        "n.produced_at.offset AS po, valueType(n.valid_from) AS vt, n.valid_from.offset AS vo, "
        "valueType(e.valid_from) AS et, n.produced_at > e.valid_from AS later"
    )
    assert row["pt"].startswith("ZONED DATETIME") and row["vt"].startswith("ZONED DATETIME")
    assert row["et"].startswith("ZONED DATETIME")
    assert (row["po"], row["vo"]) == ("+01:00", "-05:00")
    assert row["later"] is True  # 05:00Z+1h vs 05:00Z: compared as instants, not as text
    got = n4j.get_node("L1")
    assert got.valid_from == ts("2026-03-01T23:30:00-05:00")
    assert got.valid_from.utcoffset().total_seconds() == -5 * 3600
    assert got.props["produced_at"] == "2026-03-02T06:00:00+01:00"
    # as_of with another offset compares the same instant
    assert n4j.get_node("L1", as_of=ts("2026-03-02T04:29:00Z")) is None
    assert n4j.get_node("L1", as_of=ts("2026-03-02T05:30:00+01:00")) is not None


# -- vectors ------------------------------------------------------------------------------------


def test_vector_index_search_and_dimension_check(n4j) -> None:  # type: ignore[no-untyped-def]
    assert n4j.capabilities.vector_search
    n4j.vector_upsert("cards", [("a", [1.0, 0.0, 0.0]), ("b", [0.0, 1.0, 0.0]), ("c", [0.7, 0.7, 0.0])])
    hits = n4j.vector_search("cards", [1.0, 0.1, 0.0], k=2)
    assert [h[0] for h in hits] == ["a", "c"]
    assert hits[0][1] == pytest.approx(1.0 / (1.01**0.5), abs=1e-4)  # cosine similarity
    n4j.vector_upsert("cards", [("a", [0.0, 0.0, 1.0])])  # replaces a's vector
    assert [h[0] for h in n4j.vector_search("cards", [0.0, 0.0, 1.0], k=1)] == ["a"]
    assert n4j.vector_search("no-such-namespace", [1.0, 0.0, 0.0]) == []
    with pytest.raises(StoreError, match="3-dimensional"):
        n4j.vector_search("cards", [1.0, 0.0])
    with pytest.raises(StoreError, match="dimensions"):
        n4j.vector_upsert("cards", [("d", [1.0, 2.0])])
    assert n4j.counts().nodes == 0  # vectors are not entities


# -- errors -------------------------------------------------------------------------------------


def test_wrong_password_and_down_server_are_one_clear_line() -> None:
    from store.neo4j_store import Neo4jStore

    uri, user, _pw = _env()
    with pytest.raises(StoreUnavailableError) as wrong:
        Neo4jStore(uri, user, "certainly-not-the-password")
    assert "NEO4J_PASSWORD" in str(wrong.value) and "\n" not in str(wrong.value)
    port = _free_port()
    with pytest.raises(StoreUnavailableError) as down:
        Neo4jStore(f"bolt://127.0.0.1:{port}", user, "whatever-123", connection_timeout=3)
    assert "not reachable" in str(down.value) and "\n" not in str(down.value)
    with pytest.raises(StoreUnavailableError, match="must start with"):
        Neo4jStore("http://127.0.0.1:7474", user, "x")


# -- concurrent loaders -------------------------------------------------------------------------


def test_two_concurrent_loaders_share_nodes_without_duplicates(n4j) -> None:  # type: ignore[no-untyped-def]
    from store.neo4j_store import retry_transient

    materials = [NodeRecord(id=f"MAT-{k:02d}", cls="Material", props={"kind": "raw"}) for k in range(40)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def loader(i: int) -> None:
        store = _open()
        try:
            lots = [NodeRecord(id=f"L{i}-{k:04d}", cls="Lot", props={"quantity": 1.0}) for k in range(1500)]
            edges = [EdgeRecord(src=lot.id, rel="FOR_MATERIAL", dst=f"MAT-{k % 40:02d}")
                     for k, lot in enumerate(lots)]
            barrier.wait()

            def load() -> None:
                with store.transaction() as tx:
                    tx.upsert_nodes(materials)
                    for j in range(0, len(lots), 500):
                        tx.upsert_nodes(lots[j:j + 500])
                        tx.upsert_edges(edges[j:j + 500])

            retry_transient(load)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=loader, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    counts = n4j.counts()
    assert counts.nodes_by_class == {"Lot": 3000, "Material": 40}
    assert counts.edges_by_relation == {"FOR_MATERIAL": 3000}
    [dup] = n4j.run_read("MATCH (n:Entity) WITH n.id AS id, count(*) AS c WHERE c > 1 RETURN count(*) AS n")
    assert dup["n"] == 0
    assert len(n4j.neighbours("MAT-07", ["FOR_MATERIAL"], Direction.IN)) == 2 * (1500 // 40 + 1)


# -- a connection dropped in the middle of a batch -------------------------------------------------


class _CuttableProxy:
    """A TCP relay in front of the server whose live connections can be cut at will."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_connection_dropped_mid_batch_rolls_back_and_retry_works(n4j) -> None:  # type: ignore[no-untyped-def]
    uri, _user, _pw = _env()
    host, port = uri.split("://", 1)[1].rsplit(":", 1)
    proxy = _CuttableProxy((host, int(port)))
    first = [NodeRecord(id=f"D-{k:04d}", cls="Lot", props={"quantity": 1.0}) for k in range(800)]
    second = [NodeRecord(id=f"E-{k:04d}", cls="Lot", props={"quantity": 2.0}) for k in range(800)]
    via_proxy = _open(f"bolt://127.0.0.1:{proxy.port}")
    try:
        with pytest.raises(StoreError), via_proxy.transaction() as tx:
            tx.upsert_nodes(first)
            proxy.cut()
            tx.upsert_nodes(second)
        # nothing of the broken transaction is visible (the server rolled it back)
        assert n4j.counts().nodes == 0
        assert n4j.get_nodes(["D-0000", "E-0000"]) == {}
        # the same store object recovers on a new connection, and the locks were released
        with via_proxy.transaction() as tx:
            tx.upsert_nodes(first)
            tx.upsert_nodes(second)
        assert n4j.counts().nodes_by_class == {"Lot": 1600}
    finally:
        via_proxy.close()
        proxy.close()


# -- a loader killed in the middle of a bundle load ---------------------------------------------------


def _generate(out: Path, seed: int) -> Path:
    subprocess.run(
        [PY, "-m", "plantgraph", "generate", "--out", str(out), "--scale", "tiny", "--seed", str(seed), "-q"],
        check=True, cwd=ROOT, capture_output=True, timeout=300,
    )
    return out


def _state(store) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    counts = store.counts()
    nodes = sorted(store.find_nodes(), key=lambda n: n.id)
    return (counts.nodes_by_class, counts.edges_by_relation, nodes)


@pytest.mark.slow
def test_killed_loader_leaves_the_previous_state(n4j, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from graph_loader.loader import load_bundle

    second = _generate(tmp_path / "full", seed=11)
    # the previous state: an incremental bundle with some master data of the same plant
    first = tmp_path / "master"
    first.mkdir()
    shutil.copy(second / "manifest.json", first / "manifest.json")
    for f in second.iterdir():
        if f.stem in ("Enterprise", "Site", "Material", "Supplier", "Customer"):
            shutil.copy(f, first / f.name)
    load_bundle(n4j, first)
    before = _state(n4j)
    assert set(before[0]) == {"Enterprise", "Site", "Material", "Supplier", "Customer"}

    uri, user, pw = _env()
    env = {**os.environ, "PLANTGRAPH_BACKEND": "neo4j", "NEO4J_URI": uri, "NEO4J_USER": user,
           "NEO4J_PASSWORD": pw or "", "NEO4J_DATABASE": os.environ.get("NEO4J_DATABASE", "neo4j")}
    proc = subprocess.Popen([PY, "-m", "plantgraph", "load", str(second)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Wait until the loader's transaction holds locks, i.e. it has written part of the bundle.
        deadline = time.monotonic() + 240
        midway = False
        while time.monotonic() < deadline and proc.poll() is None:
            rows = n4j.run_read(
                "SHOW TRANSACTIONS YIELD metaData, activeLockCount "
                "WHERE metaData.pid = $pid AND activeLockCount > 0 RETURN count(*) AS n",
                {"pid": proc.pid},
            )
            if rows and rows[0]["n"] > 0:
                midway = True
                break
            time.sleep(0.05)
        assert midway, "the loader finished or never started writing; cannot kill it midway"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _state(n4j) == before

    # the bundle loads completely afterwards, and a second load changes nothing
    load_bundle(n4j, second)
    after = _state(n4j)
    assert after != before
    load_bundle(n4j, second)
    assert _state(n4j) == after


# -- restart ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_restart_keeps_data_and_missing_schema_is_reported(tmp_path: Path) -> None:
    from store.neo4j_store import Neo4jStore

    _env()  # same skip rules as every Neo4j test
    port = _free_port()
    env = {**os.environ, "PLANTGRAPH_NEO4J_HOME": str(tmp_path / "server"), "PLANTGRAPH_NEO4J_PORT": str(port),
           "NEO4J_PASSWORD": secrets.token_urlsafe(12), "PLANTGRAPH_NEO4J_HEAP": "512m",
           "PLANTGRAPH_NEO4J_PAGECACHE": "64m",
           # a short-lived server: C1-only JIT starts faster on a busy 2-core machine
           "PLANTGRAPH_NEO4J_JAVA_OPTS": "-XX:TieredStopAtLevel=1"}
    uri = f"bolt://127.0.0.1:{port}"
    pw = env["NEO4J_PASSWORD"]

    def neo4j_sh(cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(ROOT / "tools" / "neo4j.sh"), cmd], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=400)

    up = neo4j_sh("up")
    assert up.returncode == 0, up.stderr
    assert f"NEO4J_URI={uri}" in up.stdout
    try:
        with pytest.raises(StoreUnavailableError, match="plantgraph neo4j init"):
            Neo4jStore(uri, "neo4j", pw)
        cli_env = {**env, "NEO4J_URI": uri, "NEO4J_USER": "neo4j", "NEO4J_DATABASE": "neo4j"}
        init = subprocess.run([PY, "-m", "plantgraph", "neo4j", "init", "--json"], env=cli_env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert init.returncode == 0, init.stderr
        with Neo4jStore(uri, "neo4j", pw, require_schema=False) as s:
            s.init_schema()  # idempotent: a second run changes nothing and does not fail
        with Neo4jStore(uri, "neo4j", pw) as s:
            with s.transaction() as tx:
                tx.upsert_nodes([NodeRecord(id="L1", cls="Lot", props={"quantity": 3.0},
                                            valid_from=ts("2026-03-01T06:00:00+01:00")),
                                 NodeRecord(id="PO1", cls="ProductionOrder", props={"quantity": 3.0})])
                tx.upsert_edges([EdgeRecord(src="PO1", rel="PRODUCED", dst="L1", props={"quantity": 3.0})])
            before = (s.counts().nodes_by_class, s.get_nodes(["L1", "PO1"]), s.neighbours("PO1"))

        down = neo4j_sh("down")
        assert down.returncode == 0, down.stderr
        assert neo4j_sh("status").returncode != 0
        up = neo4j_sh("up")
        assert up.returncode == 0, up.stderr

        with Neo4jStore(uri, "neo4j", pw) as s:
            assert (s.counts().nodes_by_class, s.get_nodes(["L1", "PO1"]), s.neighbours("PO1")) == before
    finally:
        neo4j_sh("down")


def test_delete_report_counts_each_removed_edge_once(n4j) -> None:  # type: ignore[no-untyped-def]
    with n4j.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id=i, cls="Lot") for i in ("A", "B", "C")])
        tx.upsert_edges([EdgeRecord(src="A", rel="DERIVED_FROM", dst="A"),  # a loop
                         EdgeRecord(src="A", rel="DERIVED_FROM", dst="B"),  # between two deleted nodes
                         EdgeRecord(src="B", rel="DERIVED_FROM", dst="C")])
    with n4j.transaction() as tx:
        tx.delete_nodes(["A", "B", "GHOST"])
        report = tx.report
    assert (report.nodes_deleted, report.edges_deleted) == (2, 3)
    assert n4j.counts().nodes_by_class == {"Lot": 1} and n4j.counts().edges == 0


def test_routing_uri_and_named_database_work_unchanged(n4j) -> None:  # type: ignore[no-untyped-def]
    """``neo4j://`` goes through the driver's routing (managed, retried reads), as on a cluster."""
    from store.neo4j_store import Neo4jStore

    uri, user, pw = _env()
    routed = "neo4j://" + uri.split("://", 1)[1]
    with Neo4jStore(routed, user, pw, database=os.environ.get("NEO4J_DATABASE") or "neo4j") as s:
        with s.transaction() as tx:
            tx.upsert_nodes([NodeRecord(id="R1", cls="Lot", props={"quantity": 1.0})])
        assert s.get_node("R1") is not None
        assert s.counts().nodes_by_class == {"Lot": 1}
    assert n4j.get_node("R1") is not None  # the same data through bolt://
    with pytest.raises(StoreUnavailableError, match="no such database"):
        Neo4jStore(routed, user, pw, database="nosuchdb")
