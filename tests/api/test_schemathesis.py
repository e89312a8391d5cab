"""Property-based tests from the OpenAPI schema (schemathesis): no input makes the API fail with a
server error, and responses match the documented schema. Bounded: a few examples per operation."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from api.keys import KeyStore
from config.settings import Settings
from store.factory import open_store
from tests.api.conftest import _degraded_copilot
from tests.api.plant import build_two_plants

_tmp = Path(tempfile.mkdtemp(prefix="plantgraph-schemathesis-"))
atexit.register(shutil.rmtree, _tmp, True)
_settings = Settings(PLANTGRAPH_DATA=_tmp / "data", store=_tmp / "store")
_store = open_store("embedded", _tmp / "store")
build_two_plants(_store)
_ks = KeyStore(_settings.keys_path)
KEY = _ks.create("fuzzer", "admin", "*").key
SCOPED = _ks.create("fuzzer-a", "analyst", "SITE-A").key
_ks.close()
app = create_app(_settings, store=_store, copilot_factory=_degraded_copilot)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_no_server_errors_admin(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": KEY}, checks=[not_a_server_error, response_schema_conformance])


@schema.parametrize()
@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_no_server_errors_scoped(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": SCOPED}, checks=[not_a_server_error, response_schema_conformance])
