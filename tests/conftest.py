"""Shared fixtures: one real PostgreSQL primary + streaming replica per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.devcluster import LocalCluster
from tests.support import SidecarProcess


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalCluster]:
    """A local primary + one streaming replica (SCRAM auth) for the whole session."""
    with LocalCluster(replicas=1) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def _restore_cluster(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fault tests stop servers and pause replay; put everything back after each test."""
    yield
    if "pg" not in request.fixturenames:
        return
    cluster: LocalCluster = request.getfixturevalue("pg")
    assert cluster.primary is not None
    if not cluster.is_running(cluster.primary):
        cluster.start_node(cluster.primary)
    for node in cluster.replica_nodes:
        if not cluster.is_running(node):
            cluster.start_node(node)
        else:
            cluster.resume_replay(node)
    cluster.wait_streaming()


@pytest.fixture()
def sidecar_env(pg: LocalCluster) -> dict[str, str]:
    """FASTERDB_* for a sidecar on the session cluster, with short health timings for tests."""
    return {
        **pg.sidecar_env(),
        "FASTERDB_HEALTH_TIMEOUT": "0.5",
        "FASTERDB_HEALTH_CACHE_TTL": "0.25",
        "FASTERDB_CONNECT_TIMEOUT": "2",
    }


@pytest.fixture()
def sidecar(sidecar_env: dict[str, str]) -> Iterator[SidecarProcess]:
    """A running sidecar process on the session cluster (one per test)."""
    with SidecarProcess(sidecar_env) as proc:
        yield proc
