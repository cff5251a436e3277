"""The example application (the kit) as processes beside a real sidecar, on a real primary and replica.

Read-your-writes across two application processes with replay delayed; reads routed away from a
replica whose replay is paused, spilling onto the primary up to the cap; an absent sidecar; and a
switchover through a multi-host DSN while writes keep coming.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from devtools.cluster import APP_USER, DATABASE
from devtools.hot_standby import HotStandbyCluster
from devtools.postgres import free_port
from tests import faults
from tests.harness import SidecarProcess, example_app, wait_for

KEY = {"FASTERDB_READ_AFTER_KEY": "example-shared-key-0123456789"}


@pytest.fixture(scope="module")
def apps(sidecar: SidecarProcess, sidecar_env: dict[str, str]) -> Iterator[tuple[SidecarProcess, SidecarProcess]]:
    """Two processes of the example application (two pods' worth) beside one sidecar."""
    env = {**sidecar_env, **KEY, "FASTERDB_READ_MAX_LAG_SECONDS": "0.5", "FASTERDB_READ_SPILL_MAX_SHARE": "0.5"}
    with example_app(env, sidecar=sidecar, name="pod-a") as a, example_app(env, sidecar=sidecar, name="pod-b") as b:
        for app in (a, b):
            wait_for(lambda app=app: app.get("/health/db").status_code == 200, 20, what="example app ready")
        wait_for(lambda: httpx.post(a.url + "/items", json={"name": "first"}).status_code == 201, 20, what="table")
        yield a, b


@pytest.fixture()
def delayed_replay(pg: HotStandbyCluster) -> Iterator[None]:
    """The replica applies WAL 300 ms late (recovery_min_apply_delay), as a busy replica does."""
    replica = pg.replica_nodes[0]
    pg.sql(replica, "ALTER SYSTEM SET recovery_min_apply_delay = '300ms'; SELECT pg_reload_conf()")
    try:
        yield
    finally:
        pg.sql(replica, "ALTER SYSTEM RESET recovery_min_apply_delay; SELECT pg_reload_conf()")


def test_a_write_on_one_pod_is_read_on_another_with_its_token(
    apps: tuple[SidecarProcess, SidecarProcess], delayed_replay: None
) -> None:
    a, b = apps
    served: Counter[str] = Counter()
    with httpx.Client(timeout=10) as client:
        for i in range(30):
            created = client.post(a.url + "/items", json={"name": f"item-{i}"})
            assert created.status_code == 201, created.text
            token = created.headers["fasterdb-read-after"]
            read = client.get(f"{b.url}/items/{created.json()['id']}", headers={"fasterdb-read-after": token})
            assert read.status_code == 200, f"item {i}: {read.status_code} {read.text}"  # never stale
            assert read.json() == created.json()
            served[read.headers["fasterdb-served-by"]] += 1
            assert read.headers["fasterdb-read-after"]  # handed back for the client's next read
    assert set(served) <= {"primary", "replica-1"}


def test_a_forged_token_is_ignored(apps: tuple[SidecarProcess, SidecarProcess]) -> None:
    a, _ = apps
    created = httpx.post(a.url + "/items", json={"name": "forged"}).json()
    version, position, expires, mac = (
        httpx.post(a.url + "/items", json={"name": "x"}).headers["fasterdb-read-after"].split(".")
    )
    forged = f"{version}.{int(position, 16) + 10**9:x}.{expires}.{mac}"
    answer = httpx.get(f"{a.url}/items/{created['id']}", headers={"fasterdb-read-after": forged})
    assert answer.status_code in (200, 404), answer.text  # routed as a read without a token
    assert "fasterdb-read-after" not in answer.headers  # nothing to hand back


def test_reads_leave_a_paused_replica_and_spill_onto_the_primary_up_to_the_cap(
    apps: tuple[SidecarProcess, SidecarProcess], pg: HotStandbyCluster
) -> None:
    a, _ = apps
    item = httpx.post(a.url + "/items", json={"name": "lag"}).json()["id"]
    wait_for(lambda: _served(a, item) == "replica-1", 20, what="reads on the replica first")
    faults.pause_replay(pg, pg.replica_nodes[0])
    try:
        stop = threading.Event()
        writer = threading.Thread(target=_keep_writing, args=(pg, stop), daemon=True)
        writer.start()
        try:
            wait_for(lambda: _served(a, item) != "replica-1", 20, 0.1, "the replica out of rotation")
            seen = Counter(_served(a, item) for _ in range(60))
        finally:
            stop.set()
            writer.join(10)
    finally:
        faults.resume_replay(pg, pg.replica_nodes[0])
    assert "replica-1" not in seen, seen  # nothing read from the replica past its budget
    assert seen["primary"] and seen["503 replicas_lagging"], seen  # spilled, and capped
    wait_for(lambda: _served(a, item) == "replica-1", 30, 0.1, "the replica back in rotation")


def _served(app: SidecarProcess, item: int) -> str:
    answer = app.get(f"/items/{item}")
    if answer.status_code == 503:
        assert answer.headers["retry-after"] == "1"
        return f"503 {answer.json()['error']['code']}"
    assert answer.status_code == 200, answer.text
    return answer.headers["fasterdb-served-by"]


def _keep_writing(pg: HotStandbyCluster, stop: threading.Event) -> None:
    """Commit on the primary a few times a second, so a paused replica falls behind in time."""
    for _ in range(600):  # bounded: at most about a minute
        if stop.wait(0.1):
            return
        pg.sql(
            pg.primary,
            "CREATE TABLE IF NOT EXISTS public.ticks (at timestamptz); INSERT INTO public.ticks VALUES (now())",
        )


def test_without_a_sidecar_reads_go_to_the_primary(sidecar_env: dict[str, str]) -> None:
    env = {**sidecar_env, **KEY, "FASTERDB_SIDECAR_URL": f"http://127.0.0.1:{free_port()}"}
    with example_app(env, name="lonely") as app:
        wait_for(lambda: httpx.post(app.url + "/items", json={"name": "x"}).status_code == 201, 20, what="writes")
        created = httpx.post(app.url + "/items", json={"name": "alone"}).json()
        answer = app.get(f"/items/{created['id']}")
        assert answer.status_code == 200 and answer.headers["fasterdb-served-by"] == "primary"
        assert "Traceback" not in app.logs()


def test_writes_ride_through_a_switchover_on_a_multi_host_dsn() -> None:
    with HotStandbyCluster(replicas=1) as c:
        old, new = c.primary, c.replica_nodes[0]
        password = quote(c.app_password, safe="")
        both = f"postgresql://{APP_USER}:{password}@127.0.0.1:{old.port},127.0.0.1:{new.port}/{DATABASE}"
        env = {
            "FASTERDB_PRIMARY_DSN": both,
            "FASTERDB_REPLICA_DSNS": f"replica-1={c.dsn(new)}",
            "FASTERDB_HEALTH_TIMEOUT": "0.5",
            "FASTERDB_HEALTH_CACHE_TTL": "0.25",
            "FASTERDB_CONNECT_TIMEOUT": "2",
        }
        with SidecarProcess(env) as sidecar, example_app({**env, **KEY}, sidecar=sidecar, name="switch") as app:
            wait_for(lambda: httpx.post(app.url + "/items", json={"name": "x"}).status_code == 201, 20, what="app")
            statuses: Counter[int] = Counter()
            created: list[int] = []
            with httpx.Client(timeout=30) as client:
                for i in range(40):
                    if i == 10:  # mid-stream: the old primary goes away, the replica is promoted
                        c.stop_node(old, "fast")
                        c.pg_ctl(new, "promote")
                    answer = client.post(app.url + "/items", json={"name": f"w{i}"})
                    statuses[answer.status_code] += 1
                    if answer.status_code == 201:
                        created.append(answer.json()["id"])
            assert statuses == Counter({201: 40}), statuses  # held during the switchover, none refused
            rows = c.sql(new, "SELECT count(*) FROM items WHERE name LIKE 'w%'")
            assert int(rows) == 40  # every acknowledged write is on the new primary
            assert all(app.get(f"/items/{i}").status_code == 200 for i in created)


def test_the_app_starts_and_answers_with_the_database_down() -> None:
    closed = free_port()
    env = {
        "FASTERDB_PRIMARY_DSN": f"postgresql://app:pw@127.0.0.1:{closed}/app",
        "FASTERDB_CONNECT_TIMEOUT": "0.5",
        "FASTERDB_ACQUIRE_TIMEOUT": "1",
        "FASTERDB_WRITE_HOLD_SECONDS": "0.5",
        **KEY,
    }
    with example_app(env, name="nodb") as app:
        assert app.get("/health/db").status_code == 503
        answer = httpx.post(app.url + "/items", json={"name": "x"}, timeout=10)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "database_unavailable"
        assert "127.0.0.1" not in answer.text and "pw" not in answer.text  # no driver text, no DSN
        read = app.get("/items/1")
        assert read.status_code == 503 and read.json()["error"]["code"] == "database_unavailable"
        assert "Traceback" not in app.logs()
