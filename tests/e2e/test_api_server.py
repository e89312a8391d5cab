"""End to end: a real uvicorn server on 127.0.0.1 (free port, subprocess) over a small generated
plant, driven over HTTP with httpx: keys from the CLI, known answers from truth.json, events,
a proposal approved by another person, the audit chain."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph_loader.generator import generate, named_spec
from graph_loader.loader import load_bundle
from store.factory import open_store

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "plantgraph", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], dict[str, Any], Path]]:
    root = tmp_path_factory.mktemp("e2e-api")
    bundle = root / "bundle"
    generate(named_spec("tiny"), 7, bundle)
    truth = json.loads((bundle / "truth.json").read_text())
    store = open_store("embedded", root / "data" / "store")
    load_bundle(store, bundle)
    store.close()
    env = {**os.environ, "PLANTGRAPH_DATA": str(root / "data"), "PLANTGRAPH_NOW": truth["now"],
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("PLANTGRAPH_STORE", None)
    keys = {
        "analyst": _cli(env, "keys", "create", "--user", "ana", "--role", "analyst", "--plants", "*", "--json")["key"],
        "engineer": _cli(env, "keys", "create", "--user", "eng", "--role", "engineer", "--plants", "*",
                         "--json")["key"],
        "approver": _cli(env, "keys", "create", "--user", "appr", "--role", "approver", "--plants", "*",
                         "--json")["key"],
    }
    port = _free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "plantgraph", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come up in 120 s")
            time.sleep(0.3)
        yield base, keys, truth, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_api_over_real_http(server: tuple[str, dict[str, str], dict[str, Any], Path]) -> None:
    base, keys, truth, root = server
    h = {k: {"X-API-Key": v} for k, v in keys.items()}
    with httpx.Client(base_url=base, timeout=60) as c:
        ready = c.get("/readyz").json()
        assert ready["ready"] is True and ready["store"]["backend"] == "embedded"
        assert c.get("/v1/entities/LOT-0000001").status_code == 401

        scen = truth["scenarios"]["contaminated_supplier_lot"]
        r = c.get(f"/v1/trace/lot/{scen['supplier_lot']}", headers=h["analyst"])
        assert r.status_code == 200
        res = r.json()["result"]
        assert sorted(x["entity"]["id"] for x in res["customers"]) == sorted(scen["reached_customers"])
        assert sorted(res["in_house_lots"]) == sorted(scen["in_house_lots"])

        question = f"Lot {scen['supplier_lot']} is suspect. Which customers are affected?"
        ask = c.post("/v1/ask", json={"question": question}, headers=h["analyst"])
        assert ask.status_code == 200
        answer = ask.json()["answer"]
        assert set(scen["reached_customers"]) <= set(answer["answer_ids"])
        assert answer["degraded"] is True  # no vector index was built for this store
        assert c.get("/readyz").json()["index"]["state"] == "degraded"

        lot = scen["in_house_lots"][0]
        ev = {"event": {"type": "lot_status_changed", "event_id": "E2E-1", "occurred_at": truth["now"],
                        "lot_id": lot, "status": "quarantined"}}
        assert c.post("/v1/events", json=ev, headers=h["engineer"]).json()["status"] == "applied"
        assert c.post("/v1/events", json=ev, headers=h["engineer"]).json()["status"] == "duplicate"
        assert c.get(f"/v1/entities/{lot}", headers=h["analyst"]).json()["entity"]["props"]["status"] == "quarantined"

        p = c.post("/v1/proposals", json={"action": {"kind": "quality_hold", "lot_ids": [lot], "reason": "e2e"}},
                   headers=h["engineer"]).json()
        assert c.post(f"/v1/proposals/{p['id']}/approve", json={"comment": "ok"}, headers=h["approver"]).json()[
            "status"] == "approved"
        outbox = [json.loads(x) for x in (root / "data" / "outbox.jsonl").read_text().splitlines()]
        assert outbox[-1]["proposal_id"] == p["id"]

        verify = c.get("/v1/audit/verify", headers=h["approver"]).json()
        assert verify["ok"] is True and verify["records"] >= 8
        asks = c.get("/v1/audit", params={"kind": "ask"}, headers=h["approver"]).json()["items"]
        assert asks[0]["user"] == "ana" and scen["supplier_lot"] in asks[0]["question"]
