"""Session fixtures for integration tests: one real Kafka broker for the whole run.

Broker choice (``stream.broker.resolve_bootstrap``): KAFKA_BOOTSTRAP_SERVERS if set, else
testcontainers when a Docker engine answers, else the local broker from deploy/kafka. Under
CI=true a missing broker FAILS the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import pytest

from stream.config import in_ci


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from stream.broker import resolve_bootstrap

    try:
        handle = resolve_bootstrap()
    except Exception as exc:  # noqa: BLE001 - any failure: fail under CI, skip elsewhere
        if in_ci():
            pytest.fail(f"CI=true and no Kafka broker could be had: {exc}")
        pytest.skip(f"no Kafka broker: {exc} (run `make kafka-up`)")
    yield handle.bootstrap
    handle.stop()


@pytest.fixture()
def unique_name():
    from tests.integration.kafka_helpers import unique

    return unique
