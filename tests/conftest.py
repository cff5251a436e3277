"""Shared fixtures: one real PostgreSQL primary + streaming replica per test session.

Markers follow folders: a test under ``tests/<folder>/`` is marked ``<folder>`` automatically,
and a module that declares another of these markers is an error.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devtools.cluster import ClusterError
from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.harness import SidecarProcess

FOLDER_MARKERS = ("unit", "integration", "conformance", "chart", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    """Put the venv's bin first on the PATH, as activating it would: bootstrap.sh puts the test tools
    there (promtool, checkov, shellcheck, actionlint), for root and non-root users alike."""
    venv_bin = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != venv_bin:
        os.environ["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "")])
    _share_httpx_default_ssl_context()


def _share_httpx_default_ssl_context() -> None:
    """Every httpx client of this process (the tests' and the in-process CLI's) shares one default
    SSL context: httpx builds one per client, loading certifi's bundle (about 50 ms), and the
    tests make thousands of one-shot requests (``httpx.get``) to plain-HTTP sidecars.

    Only the default (``verify=True``, no client certificate) is shared, per SSL_CERT_FILE and
    SSL_CERT_DIR; any other ``verify`` builds its context as before.
    """
    import ssl

    from httpx._transports import default

    build = default.create_ssl_context
    shared: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in shared:
            shared[key] = build(verify=verify, cert=cert, trust_env=trust_env)
        return shared[key]

    default.create_ssl_context = create_ssl_context  # type: ignore[assignment]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder; refuse a folder marker that contradicts the folder."""
    tests_dir = Path(__file__).parent
    for item in items:
        folder = Path(str(item.fspath)).relative_to(tests_dir).parts[0]
        if folder not in FOLDER_MARKERS:
            continue
        wrong = [m.name for m in item.iter_markers() if m.name in FOLDER_MARKERS and m.name != folder]
        if wrong:
            raise pytest.UsageError(f"{item.nodeid} is under tests/{folder}/ but marked {wrong}")
        item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def pg() -> Iterator[HotStandbyCluster]:
    """A local primary + one streaming replica (SCRAM auth) for the whole session."""
    with HotStandbyCluster(replicas=1) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def _restore_cluster(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fault tests stop servers and pause replay; put everything back after each test."""
    yield
    if "pg" not in request.fixturenames:
        return
    cluster: HotStandbyCluster = request.getfixturevalue("pg")
    for node in cluster.nodes:
        faults.thaw_all(node)
    if not cluster.is_running(cluster.primary):
        cluster.start_node(cluster.primary)
    for node in cluster.replica_nodes:
        if not cluster.is_running(node):
            cluster.start_node(node)
    # In this process (asyncpg), not with psql: this runs after every test of the cluster, and a
    # psql process per question cost about a tenth of a second each on a busy machine. In a thread
    # of its own: a test's event loop (the browser tests') may still run in this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, _resume_and_wait_streaming(cluster)).result()


async def _resume_and_wait_streaming(cluster: HotStandbyCluster, timeout: float = 30.0) -> None:
    """pg_wal_replay_resume() on every replica, then wait until all of them stream again."""
    for node in cluster.replica_nodes:
        conn = await faults.admin_connect(cluster, node, "fasterdb-test/restore")
        try:
            await conn.execute("SELECT pg_wal_replay_resume()")
        finally:
            await conn.close()
    conn = await faults.admin_connect(cluster, cluster.primary, "fasterdb-test/restore")
    try:
        deadline = time.monotonic() + timeout
        want = len(cluster.replica_nodes)
        while True:
            got = await conn.fetchval("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            if got >= want:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"only {got} of {want} replicas streaming after {timeout:.0f}s")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sidecar_env(pg: HotStandbyCluster) -> dict[str, str]:
    """FASTERDB_* for a sidecar on the session cluster, with short health timings for tests."""
    return {
        **pg.sidecar_env(),
        "FASTERDB_HEALTH_TIMEOUT": "0.5",
        "FASTERDB_HEALTH_CACHE_TTL": "0.25",
        "FASTERDB_CONNECT_TIMEOUT": "2",
    }


@pytest.fixture(scope="module")
def sidecar(sidecar_env: dict[str, str]) -> Iterator[SidecarProcess]:
    """A running sidecar process on the session cluster, shared by the tests of one module."""
    with SidecarProcess(sidecar_env) as proc:
        yield proc
