"""docker-compose.yml, Dockerfile and .env.example agree with each other and with the project.

No Docker engine runs here, so the structure is checked with a YAML parser; when a
``docker-compose`` (or ``docker compose``) tool is installed, ``config`` validates the file too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=VALUE"
            out[key.strip()] = value.strip()
    return out


def _as_dict(env: Any) -> dict[str, str]:
    """``environment`` may be a mapping or a list of KEY=VALUE strings."""
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    return dict(item.split("=", 1) for item in env or [])


def test_three_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"neo4j", "api", "ui"}


def test_neo4j_service(compose: dict[str, Any]) -> None:
    neo = compose["services"]["neo4j"]
    assert re.fullmatch(r"neo4j:5\.26(\.\d+)?(-community)?", neo["image"]), neo["image"]
    env = _as_dict(neo["environment"])
    assert env["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD")
    assert "env_file" in neo
    assert any(str(v).endswith(":/data") for v in neo["volumes"]), "the database needs a data volume"
    assert any(str(v).split(":")[0] in compose.get("volumes", {}) for v in neo["volumes"])
    hc = neo["healthcheck"]
    test = " ".join(hc["test"]) if isinstance(hc["test"], list) else hc["test"]
    assert "cypher-shell" in test and "RETURN 1" in test
    assert "$${NEO4J_PASSWORD}" in test  # escaped: read inside the container, not pasted in
    assert {"interval", "timeout", "retries"} <= set(hc)
    assert any(str(p).endswith(":7687") for p in neo["ports"])


def test_api_waits_for_healthy_neo4j_and_inits_schema(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["build"] in (".", {"context": "."}) or api["build"].get("context") == "."
    assert api["depends_on"]["neo4j"]["condition"] == "service_healthy"
    env = _as_dict(api["environment"])
    assert env["PLANTGRAPH_BACKEND"] == "neo4j"
    assert env["NEO4J_URI"] == "bolt://neo4j:7687"  # the compose service name
    assert "env_file" in api  # NEO4J_PASSWORD comes from .env, never from the file itself
    command = " ".join(api["command"]) if isinstance(api["command"], list) else api["command"]
    assert command.index("plantgraph neo4j init") < command.index("plantgraph serve")
    assert "healthz" in " ".join(api["healthcheck"]["test"])
    assert any(str(p).endswith(":8000") for p in api["ports"])


def test_ui_points_at_the_api(compose: dict[str, Any]) -> None:
    ui = compose["services"]["ui"]
    assert ui["depends_on"]["api"]["condition"] == "service_healthy"
    assert _as_dict(ui["environment"])["PLANTGRAPH_API_URL"] == "http://api:8000"
    assert "streamlit" in " ".join(ui["command"])
    assert (ROOT / "ui" / "app.py").exists()
    assert ui["image"] == compose["services"]["api"]["image"]


def test_no_secret_in_compose_and_every_variable_documented(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    example = _env_example()
    assert "NEO4J_PASSWORD" in example
    # every ${VAR} the file substitutes is explained in .env.example
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    assert used, "expected variable substitution"
    assert used <= set(example), f"undocumented in .env.example: {sorted(used - set(example))}"
    assert example["NEO4J_PASSWORD"] not in text


def test_dockerfile_installs_cpu_torch_first_then_the_project() -> None:
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pin = re.search(r'"torch==([^"]+)"', pyproject)
    assert pin is not None
    torch_line = next(i for i, line in enumerate(docker.splitlines()) if "torch==" in line)
    project_line = next(i for i, line in enumerate(docker.splitlines()) if re.search(r"pip install \.$", line))
    assert torch_line < project_line
    assert f"torch=={pin.group(1)}" in docker and "whl/cpu" in docker


def test_dockerfile_copies_every_installed_package() -> None:
    """``pip install .`` in the image installs only what was copied in: a package the project
    declares but the Dockerfile leaves out would be missing from the image."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", docker, flags=re.MULTILINE))
    assert declared and declared <= copied, f"not copied into the image: {sorted(declared - copied)}"


def _compose_tool() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_config_when_the_tool_exists(tmp_path: Path) -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("docker-compose is not installed here; the YAML structure is checked above")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    done = subprocess.run([*tool, "config", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
