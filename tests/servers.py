"""Real servers for end-to-end tests: a generated plant behind uvicorn, Streamlit in front of it.

Each runs as a subprocess on a free 127.0.0.1 port and is stopped when its context ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Plant:
    """A generated, loaded plant with its truth and one API key per (user, role)."""

    root: Path
    env: dict[str, str]
    truth: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "plantgraph", *args], env=self.env, cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=True)
        return out.stdout

    def add_key(self, user: str, role: str, plants: str = "*") -> str:
        self.keys[user] = self.cli("keys", "create", "--user", user, "--role", role, "--plants", plants,
                                   "--quiet").strip()
        return self.keys[user]


def make_plant(root: Path, scale: str = "tiny", seed: int = 7) -> Plant:
    from graph_loader.generator import generate, named_spec
    from graph_loader.loader import load_bundle
    from store.factory import open_store

    bundle = root / "bundle"
    generate(named_spec(scale), seed, bundle)
    truth = json.loads((bundle / "truth.json").read_text())
    store = open_store("embedded", root / "data" / "store")
    try:
        load_bundle(store, bundle)
    finally:
        store.close()
    env = {**os.environ, "PLANTGRAPH_DATA": str(root / "data"), "PLANTGRAPH_NOW": truth["now"],
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PLANTGRAPH_STORE", None)
    return Plant(root=root, env=env, truth=truth)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=3).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {seconds:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path, probe: str) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_http(probe, proc, log)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def api_server(plant: Plant) -> Iterator[str]:
    """uvicorn (``plantgraph serve``) on a free port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "plantgraph", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]
    with _process(cmd, plant.env, plant.root / "api.log", f"{base}/healthz"):
        yield base


@contextmanager
def ui_server(plant: Plant, api_url: str) -> Iterator[str]:
    """Streamlit (ui/app.py) on a free port, talking to ``api_url``; yields its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**plant.env, "PLANTGRAPH_API_URL": api_url}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with _process(cmd, env, plant.root / "ui.log", f"{base}/_stcore/health"):
        yield base
