"""One generated plant behind a real API for every UI test (AppTest and browser)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.servers import Plant, api_server, make_plant


@dataclass
class UiStack:
    plant: Plant
    api_url: str

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"X-API-Key": self.plant.keys[user]}, timeout=120)


@pytest.fixture(scope="session")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    plant = make_plant(tmp_path_factory.mktemp("ui-plant"), scale="tiny")
    for user, role in [("ana", "analyst"), ("pia", "planner"), ("eng", "engineer"), ("apo", "approver"),
                       ("apo2", "approver")]:
        plant.add_key(user, role)
    with api_server(plant) as url:
        yield UiStack(plant=plant, api_url=url)
