"""Fuzz the whole HTTP API from its own OpenAPI schema (schemathesis): never a 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr

from service.app import create_app

from .conftest import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, settings):
    import shutil

    copy = tmp_path_factory.mktemp("fuzz") / "idx"
    shutil.copytree(settings.index_dir, copy)
    fuzzed = settings.model_copy(
        update={"index_dir": copy, "admin_key": SecretStr("fuzz-admin"), "rerank": False}
    )
    with LiveServer(create_app(fuzzed)) as server:
        yield server


def test_no_request_gets_a_server_error(fuzz_server):
    # schemathesis' pytest plugin does not load under pytest 9, so the loop is driven here:
    # one hypothesis run per operation of the service's own OpenAPI schema.
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case):
            # Half the cases carry the admin key, so writes and admin routes are fuzzed too.
            headers = {"Authorization": "Bearer fuzz-admin"} if hash(repr(case)) % 2 else {}
            response = case.call(headers=headers, timeout=60)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            assert response.headers["content-type"][0].startswith("application/json")

        call()
