"""Bundle upload (zip / tar.gz, all or nothing, errors with their place) and known answers over HTTP
from the generator's truth.json, including what a one-plant key may see of them."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from config.settings import Settings
from graph_loader.generator import generate, named_spec
from store.base import GraphStore
from store.factory import open_store
from tests.api.conftest import Keys, _degraded_copilot, make_keys


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "bundle"
    generate(named_spec("tiny"), 7, out)
    return out


def zipped(folder: Path, edit: dict[str, str] | None = None, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.iterdir()):
            if p.name == "truth.json":
                continue
            text = p.read_text("utf-8")
            if edit and p.name in edit:
                text = edit[p.name]
            zf.writestr(prefix + p.name, text)
    return buf.getvalue()


def tarred(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(folder, arcname="bundle", filter=lambda ti: None if ti.name.endswith("truth.json") else ti)
    return buf.getvalue()


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[tuple[TestClient, Keys, GraphStore]]:
    settings = Settings(PLANTGRAPH_DATA=tmp_path / "data", store=tmp_path / "store")
    keys = make_keys(settings)
    store = open_store("embedded", tmp_path / "store")
    with TestClient(create_app(settings, store=store, copilot_factory=_degraded_copilot)) as c:
        yield c, keys, store
    store.close()


def upload(c: TestClient, keys: Keys, name: str, data: bytes, key: str = "admin") -> Any:
    return c.post("/v1/bundles", headers=keys.h(key), files={"file": (name, data, "application/octet-stream")})


def test_upload_zip_then_tar_is_idempotent(empty_client: tuple[TestClient, Keys, GraphStore],
                                           tiny_bundle: Path) -> None:
    c, keys, store = empty_client
    r = upload(c, keys, "tiny.zip", zipped(tiny_bundle))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["valid"] and report["written"]
    lot_rows = sum(1 for _ in (tiny_bundle / "Lot.csv").open()) - 1
    assert report["nodes_by_class"]["Lot"] == lot_rows
    first = store.counts()
    assert first.nodes == report["nodes"]
    r = upload(c, keys, "tiny.tar.gz", tarred(tiny_bundle))
    assert r.status_code == 200, r.text
    again = store.counts()
    assert (again.nodes_by_class, again.edges_by_relation) == (first.nodes_by_class, first.edges_by_relation)
    # visible to the next query, including search
    lot = next(iter(store.find_nodes("Lot", limit=1)))
    assert c.get(f"/v1/entities/{lot.id}", headers=keys.h("viewer")).status_code == 200
    assert c.get("/v1/entities", params={"q": lot.id}, headers=keys.h("viewer")).json()["items"]


def test_an_upload_into_an_empty_store_keeps_it_shared(empty_client: tuple[TestClient, Keys, GraphStore],
                                                       tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server goes on answering while it loads: no bulk transaction that would hold the
    store alone (as a first load from the command line does)."""
    c, keys, store = empty_client
    sole: list[bool] = []
    plain = type(store).transaction

    @contextmanager
    def watched(self: GraphStore) -> Iterator[Any]:
        with plain(self) as tx:
            sole.append(tx.sole)
            yield tx

    monkeypatch.setattr(type(store), "bulk_transaction", lambda self: pytest.fail("a bulk transaction"))
    monkeypatch.setattr(type(store), "transaction", watched)
    assert store.counts().nodes == 0
    r = upload(c, keys, "tiny.zip", zipped(tiny_bundle))
    assert r.status_code == 200, r.text
    assert sole == [False] and store.counts().nodes == r.json()["nodes"]


def test_bad_bundle_loads_nothing_and_names_the_place(empty_client: tuple[TestClient, Keys, GraphStore],
                                                      tiny_bundle: Path) -> None:
    c, keys, store = empty_client
    lines = (tiny_bundle / "Lot.csv").read_text("utf-8").splitlines()
    header = lines[0].split(",")
    qcol = header.index("quantity")
    row = lines[3].split(",")
    row[qcol] = "lots"
    lines[3] = ",".join(row)
    r = upload(c, keys, "bad.zip", zipped(tiny_bundle, {"Lot.csv": "\n".join(lines) + "\n"}))
    assert r.status_code == 422
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(e["loc"] == "Lot.csv:4:quantity" for e in body["errors"]), body["errors"][:3]
    assert store.counts().nodes == 0


@pytest.mark.parametrize(("name", "data", "status"), [
    ("x.zip", b"this is not a zip", 422),
    ("x.txt", b"hello", 422),
])
def test_not_an_archive(empty_client: tuple[TestClient, Keys, GraphStore], name: str, data: bytes,
                        status: int) -> None:
    c, keys, _ = empty_client
    assert upload(c, keys, name, data).status_code == status


def test_archive_escaping_its_folder_is_refused(empty_client: tuple[TestClient, Keys, GraphStore],
                                                tmp_path: Path) -> None:
    c, keys, _ = empty_client
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.csv", "id\n")
    r = upload(c, keys, "evil.zip", buf.getvalue())
    assert r.status_code == 422 and "escapes" in r.json()["detail"]
    assert not (tmp_path.parent / "evil.csv").exists()


def test_archive_without_manifest(empty_client: tuple[TestClient, Keys, GraphStore]) -> None:
    c, keys, _ = empty_client
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Lot.csv", "id\n")
    r = upload(c, keys, "nomanifest.zip", buf.getvalue())
    assert r.status_code == 422 and "manifest" in r.json()["detail"]


def test_upload_needs_admin(empty_client: tuple[TestClient, Keys, GraphStore], tiny_bundle: Path) -> None:
    c, keys, store = empty_client
    assert upload(c, keys, "tiny.zip", zipped(tiny_bundle), key="engineer").status_code == 403
    assert store.counts().nodes == 0


def test_bundle_in_a_top_level_folder(empty_client: tuple[TestClient, Keys, GraphStore], tiny_bundle: Path) -> None:
    c, keys, store = empty_client
    r = upload(c, keys, "nested.zip", zipped(tiny_bundle, prefix="export-2026/"))
    assert r.status_code == 200, r.text
    assert store.counts().nodes > 0


# -- known answers over HTTP ------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    from graph_loader.loader import load_bundle

    root = tmp_path_factory.mktemp("loaded")
    store = open_store("embedded", root / "store")
    load_bundle(store, tiny_bundle)
    store.close()
    yield root, tiny_bundle
    shutil.rmtree(root, ignore_errors=True)


def test_truth_contaminated_lot_over_http(loaded: tuple[Path, Path], tmp_path: Path) -> None:
    root, bundle = loaded
    truth = json.loads((bundle / "truth.json").read_text())["scenarios"]["contaminated_supplier_lot"]
    settings = Settings(PLANTGRAPH_DATA=tmp_path / "data", store=root / "store")
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as c:
        full = c.get(f"/v1/trace/lot/{truth['supplier_lot']}", headers=keys.h("analyst")).json()["result"]
        assert sorted(x["entity"]["id"] for x in full["customers"]) == sorted(truth["reached_customers"])
        sols = sorted(x["entity"]["id"] for x in full["sales_order_lines"])
        assert sols == sorted(truth["reached_sales_order_lines"])
        store = c.app.state.services.store()  # type: ignore[attr-defined]
        lot_plant = store.get_node(truth["supplier_lot"]).plant
        plants = {n.plant for n in store.find_nodes("Site")}
        other = next(p for p in plants if p != lot_plant)
        # the lot's own plant sees it; the other plant's key gets a 404
        scoped = c.get(f"/v1/trace/lot/{truth['supplier_lot']}", headers={"X-API-Key": _key(settings, lot_plant)})
        assert scoped.status_code == 200
        seen = {x["entity"]["id"] for v in scoped.json()["result"]["reached"].values() for x in v}
        assert all(store.get_node(i).plant in (None, lot_plant) for i in seen)
        assert c.get(f"/v1/trace/lot/{truth['supplier_lot']}",
                     headers={"X-API-Key": _key(settings, other)}).status_code == 404


def _key(settings: Settings, plant: str | None) -> str:
    from api.keys import KeyStore

    ks = KeyStore(settings.keys_path)
    k = ks.create(f"analyst-{plant}", "analyst", plant or "*").key
    ks.close()
    return k
