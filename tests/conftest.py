"""Session-wide fixtures: a real Redis server started by the test session on a free port.

No Redis mocks anywhere: runtime and metadata tests talk to this server. It is started from the
same binary `planflow run` would use (runtime.embedded), so the suite needs no Redis installed by
hand. Each test gets its own key namespace, so tests never see each other's keys.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.defaults import DATA_DIR_ENV
from runtime.embedded import EmbeddedRedis

REDIS_URL_ENV = "PLANFLOW_REDIS_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-ray", action="store_true", default=False,
                     help="skip the tests marked `ray` (Ray is an optional extra; CI installs it "
                          "and runs them: without this flag a missing Ray fails them)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--no-ray"):
        return
    skip = pytest.mark.skip(reason="--no-ray")
    for item in items:
        if "ray" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def planflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test touches the user's ~/.planflow or their PLANFLOW_REDIS_URL: pool logs, embedded
    data and metrics of the whole session go to a temporary PLANFLOW_HOME."""
    home = tmp_path_factory.mktemp("planflow-home")
    saved = {k: os.environ.get(k) for k in (DATA_DIR_ENV, REDIS_URL_ENV)}
    os.environ[DATA_DIR_ENV] = str(home)
    os.environ.pop(REDIS_URL_ENV, None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A private redis-server on a free TCP port for the whole session; stopped at the end."""
    server = EmbeddedRedis(persistent=False, port=_free_port())
    with server:
        yield server


@pytest.fixture()
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture()
def namespace() -> str:
    """A key namespace of this test only."""
    return f"test{uuid.uuid4().hex[:8]}"
