"""The kit attacked on the real primary and replica: what a careless application, a hung server or a
connection lost at the wrong moment does to read-your-writes, pooled sessions and error answers."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from FasterAPI import Faster, Response

from devtools.cluster import APP_USER, DATABASE, free_port
from devtools.hot_standby import HotStandbyCluster
from fasterdb import Database, served_by
from fasterdb.lsn import parse_lsn
from fasterdb.settings import KitSettings
from fasterdb.sidecar import ReplicaView, View
from tests import faults
from tests.harness import InProcessApp, SidecarProcess, example_app, wait_for

KEY = "kit-attack-key-0123456789"


def kit_settings(pg: HotStandbyCluster, **overrides: str) -> KitSettings:
    env = {
        **pg.sidecar_env(),
        "FASTERDB_SIDECAR_URL": "",
        "FASTERDB_APP_NAME": "kitattack",
        "FASTERDB_READ_AFTER_KEY": KEY,
        "FASTERDB_POOL_MAX_SIZE": "3",
        "FASTERDB_ACQUIRE_TIMEOUT": "1",
        "FASTERDB_CONNECT_TIMEOUT": "1",
        **overrides,
    }
    return KitSettings.from_env(env)


def new_app(db: Database) -> Faster:
    app = Faster(openapi_url=None, docs_url=None, redoc_url=None)
    db.install(app)
    return app


def ready(app: InProcessApp, db: Database) -> None:
    async def check() -> bool:
        return all(p.ready_for_acquire for p in db.pools())

    wait_for(lambda: app.call(check), 20, what="kit pools ready")


def idle(app: InProcessApp, db: Database) -> bool:
    async def check() -> bool:
        return all(p.held == 0 and p.snapshot().in_use == 0 for p in db.pools())

    return app.call(check)


@pytest.fixture(scope="module")
def tables(pg: HotStandbyCluster) -> None:
    pg.sql(
        pg.primary,
        "CREATE TABLE IF NOT EXISTS public.attack_items (id bigserial PRIMARY KEY, name text); "
        "GRANT ALL ON public.attack_items TO PUBLIC; GRANT ALL ON SEQUENCE public.attack_items_id_seq TO PUBLIC",
    )


@pytest.fixture()
def delayed_replay(pg: HotStandbyCluster) -> Iterator[None]:
    """The replica applies WAL 300 ms late (recovery_min_apply_delay), as a busy replica does."""
    replica = pg.replica_nodes[0]
    pg.sql(replica, "ALTER SYSTEM SET recovery_min_apply_delay = '300ms'; SELECT pg_reload_conf()")
    try:
        yield
    finally:
        pg.sql(replica, "ALTER SYSTEM RESET recovery_min_apply_delay; SELECT pg_reload_conf()")


# -- read-your-writes ---------------------------------------------------------------------------


def test_a_read_after_a_write_in_the_same_request_sees_the_write(
    pg: HotStandbyCluster, sidecar: SidecarProcess, tables: None, delayed_replay: None
) -> None:
    # The commonest read-your-writes: insert, then read back (to render it) in the same handler.
    # The kit knows the write's position (it hands it to the client as a token) but routes the
    # read as if it had none: to a replica that has not replayed the row yet.
    db = Database(kit_settings(pg, FASTERDB_SIDECAR_URL=sidecar.url, FASTERDB_SIDECAR_INTERVAL="0.1"))
    app = new_app(db)

    @app.post("/items")
    async def create() -> Response:
        async with db.write() as conn:
            new = await conn.fetchval("INSERT INTO public.attack_items (name) VALUES ('x') RETURNING id")
        async with db.read() as conn:
            found = await conn.fetchval("SELECT count(*) FROM public.attack_items WHERE id = $1", new)
        return Response(f'{{"found": {found}, "by": "{served_by()}"}}'.encode(), 201, media_type="application/json")

    @app.get("/who")
    async def who() -> Response:
        async with db.read() as conn:
            await conn.fetchval("SELECT 1")
        return Response(f'{{"by": "{served_by()}"}}'.encode(), media_type="application/json")

    with InProcessApp(app) as served:
        ready(served, db)
        wait_for(lambda: served.get("/who").json()["by"] == "replica-1", 20, what="reads on the replica")
        with httpx.Client(timeout=10) as client:
            answers = [client.post(served.url + "/items").json() for _ in range(5)]
        assert all(a["found"] == 1 for a in answers), answers  # never its own write missing
        assert idle(served, db)


def test_a_committed_write_whose_position_query_fails_is_not_answered_as_retryable(
    pg: HotStandbyCluster, tables: None
) -> None:
    # COMMIT succeeded; right after it the connection is lost (the backend terminated) before the
    # kit's `SELECT pg_current_wal_insert_lsn()`. Today that error leaves the `db.write()` block:
    # the client gets 503 database_unavailable with Retry-After — "safe to retry" — for a row that
    # is in the table, and retrying writes it twice.
    db = Database(kit_settings(pg))
    app = new_app(db)

    @app.post("/once")
    async def once() -> Response:
        async with db.write() as conn:
            await conn.execute("INSERT INTO public.attack_items (name) VALUES ('once')")
            pid = conn.get_server_pid()

            def lost_after_commit(record: Any) -> None:
                if record.query == "COMMIT":  # runs as soon as COMMIT's answer arrived
                    os.kill(pid, signal.SIGTERM)

            conn.add_query_logger(lost_after_commit)
        return Response(b"{}", 201, media_type="application/json")

    count = "SELECT count(*) FROM public.attack_items WHERE name = 'once'"
    before = int(pg.sql(pg.primary, count))
    with InProcessApp(app) as served:
        ready(served, db)
        answer = httpx.post(served.url + "/once", timeout=10)
        wait_for(lambda: idle(served, db), 10, what="connections back")
    assert int(pg.sql(pg.primary, count)) == before + 1  # the write is there ...
    assert answer.status_code == 201, answer.text  # ... so it is not answered as failed
    assert answer.headers.get("fasterdb-read-after", "").startswith("v1.")  # and reads can find it


def test_a_token_read_waits_for_a_replica_that_catches_up(pg: HotStandbyCluster, tables: None) -> None:
    # A token newer than the sidecar's last view of the replica: the read waits up to
    # FASTERDB_READ_AFTER_WAIT on the replica, checking pg_last_wal_replay_lsn() >= $1::pg_lsn.
    # asyncpg's pg_lsn codec takes an int; the kit passes the position as text ("0/3001290"), so
    # the check fails on the client every time (DataError, swallowed): every such read falls
    # back to the primary, and the replica wait never works (read_after:waited stays 0).
    db = Database(kit_settings(pg))
    app = new_app(db)

    @app.post("/items")
    async def create() -> Response:
        async with db.write() as conn:
            await conn.execute("INSERT INTO public.attack_items (name) VALUES ('token')")
        return Response(b"{}", 201, media_type="application/json")

    @app.get("/read")
    async def read() -> Response:
        async with db.read() as conn:
            await conn.fetchval("SELECT 1")
        return Response(f'{{"by": "{served_by()}"}}'.encode(), media_type="application/json")

    with InProcessApp(app) as served:
        ready(served, db)
        seen_by_sidecar = _replay_lsn(pg)  # the view is older than the write
        token = httpx.post(served.url + "/items", timeout=10).headers["fasterdb-read-after"]
        position = db.tokens.verify(token)
        assert position is not None
        wait_for(lambda: _replay_lsn(pg) >= position, 10, what="the replica has replayed the write")

        async def route() -> None:
            _in_rotation(db, seen_by_sidecar)

        served.call(route)
        answer = httpx.get(served.url + "/read", headers={"fasterdb-read-after": token}, timeout=10)
    assert answer.json() == {"by": "replica-1"}, (answer.text, dict(db.counts))
    assert db.counts["read_after:waited"] == 1 and db.counts["read_after:fallback"] == 0


# -- pooled sessions ----------------------------------------------------------------------------


def test_session_state_set_in_one_request_does_not_reach_the_next(pg: HotStandbyCluster) -> None:
    # A careless handler sets a session GUC (a tenant for row-level security) or takes a session
    # advisory lock and fails before unlocking. asyncpg's pool resets sessions on release (RESET
    # ALL, pg_advisory_unlock_all, UNLISTEN, CLOSE ALL); the kit's pools skip that reset.
    async def scenario() -> tuple[str | None, str]:
        db = Database(kit_settings(pg, FASTERDB_POOL_MIN_SIZE="1", FASTERDB_POOL_MAX_SIZE="1"))
        await db.open()
        try:
            with pytest.raises(ZeroDivisionError):
                async with db.read() as conn:  # request 1 (tenant alice)
                    await conn.execute("SET app.tenant = 'alice'")
                    await conn.execute("SELECT pg_advisory_lock(424242)")
                    1 / 0  # noqa: B018 - the handler fails before unlocking
            async with db.read() as conn:  # request 2, another tenant's, on the one connection
                tenant = await conn.fetchval("SELECT nullif(current_setting('app.tenant', true), '')")
            other = pg.sql(pg.primary, "SELECT pg_try_advisory_lock(424242)")  # another session
            return tenant, other
        finally:
            await db.close()

    tenant, other = asyncio.run(scenario())
    assert tenant is None, f"request 2 runs as tenant {tenant!r}"
    assert other == "t", "the advisory lock of a failed request is still held by the pool"


# -- deadlines and hung servers -----------------------------------------------------------------


def test_a_statement_past_the_command_timeout_is_a_json_503_not_a_bare_500(pg: HotStandbyCluster) -> None:
    # FASTERDB_COMMAND_TIMEOUT cuts a statement off on the client (asyncpg raises TimeoutError).
    # Today that TimeoutError leaves the handler unhandled: FasterAPI's bare
    # {"detail": "Internal Server Error"}, nothing logged, no Retry-After.
    db = Database(kit_settings(pg, FASTERDB_COMMAND_TIMEOUT="1"))
    app = new_app(db)

    @app.post("/slow")
    async def slow() -> Response:
        async with db.write() as conn:
            await conn.execute("SET LOCAL statement_timeout = 0")  # the client's deadline, not the server's
            await conn.execute("SELECT pg_sleep(3)")
        return Response(b"{}", media_type="application/json")

    with InProcessApp(app) as served:
        ready(served, db)
        answer = httpx.post(served.url + "/slow", timeout=20)
        wait_for(lambda: idle(served, db), 10, what="connections back")
    assert answer.status_code == 503, answer.text
    assert answer.headers.get("retry-after") == "1"
    assert answer.json()["error"]["code"] == "database_unavailable"


def _in_rotation(db: Database, replay_lsn: int) -> None:
    """The sidecar's view as it is for a moment after a replica hangs: streaming, no lag."""
    db.router.observe(
        View({"replica-1": ReplicaView("replica-1", "streaming", 0, 0.0, replay_lsn)}, None, time.monotonic())
    )


def _replay_lsn(pg: HotStandbyCluster) -> int:
    position = parse_lsn(pg.sql(pg.replica_nodes[0], "SELECT pg_last_wal_replay_lsn()::text"))
    assert position is not None
    return position


def test_a_read_on_a_frozen_replica_is_a_json_503_within_the_command_timeout(pg: HotStandbyCluster) -> None:
    # A replica host hangs (SIGSTOP) while the view still has it in rotation, as it does for an
    # interval or so. The read's statement is cut off by FASTERDB_COMMAND_TIMEOUT (2 s); then the
    # release waits for asyncpg's cancel request to the hung server for another command timeout,
    # and the TimeoutError reaches the client as a bare 500.
    db = Database(kit_settings(pg, FASTERDB_COMMAND_TIMEOUT="2"))
    app = new_app(db)

    @app.get("/read")
    async def read() -> Response:
        async with db.read() as conn:
            await conn.fetchval("SELECT 1")
        return Response(f'{{"by": "{served_by()}"}}'.encode(), media_type="application/json")

    with InProcessApp(app) as served:
        ready(served, db)
        position = _replay_lsn(pg)

        async def route_to_replica() -> None:
            _in_rotation(db, position)

        served.call(route_to_replica)
        assert served.get("/read").json() == {"by": "replica-1"}
        thaw = faults.freeze(pg.replica_nodes[0])
        try:
            served.call(route_to_replica)
            started = time.monotonic()
            answer = httpx.get(served.url + "/read", timeout=30)
            took = time.monotonic() - started
        finally:
            thaw()
        wait_for(lambda: idle(served, db), 10, what="connections back")
    assert answer.status_code == 503, answer.text
    assert answer.headers.get("retry-after") == "1" and answer.json()["error"]["code"] == "database_unavailable"
    assert took < 3.5, f"answered after {took:.1f} s (command timeout 2 s)"


def test_a_token_read_waits_on_a_frozen_replica_no_longer_than_the_read_after_wait(
    pg: HotStandbyCluster, tables: None
) -> None:
    # A read carrying a token waits up to FASTERDB_READ_AFTER_WAIT (0.25 s) for a replica, then
    # reads from the primary. Its replay check has no deadline of its own: on a hung replica it
    # waits for the command timeout (3 s), then again for the cancel request while releasing.
    db = Database(kit_settings(pg, FASTERDB_COMMAND_TIMEOUT="3"))
    app = new_app(db)

    @app.get("/read")
    async def read() -> Response:
        async with db.read() as conn:
            await conn.fetchval("SELECT 1")
        return Response(f'{{"by": "{served_by()}"}}'.encode(), media_type="application/json")

    with InProcessApp(app) as served:
        ready(served, db)
        position = _replay_lsn(pg)

        async def route_and_warm() -> None:
            _in_rotation(db, position)
            async with db.replicas["replica-1"].acquire() as conn:  # an idle connection to the replica
                await conn.fetchval("SELECT 1")

        served.call(route_and_warm)
        token = db.tokens.issue(position + 1024 * 1024)  # a write the replica has not replayed
        thaw = faults.freeze(pg.replica_nodes[0])
        try:

            async def route() -> None:
                _in_rotation(db, position)

            served.call(route)
            started = time.monotonic()
            answer = httpx.get(served.url + "/read", headers={"fasterdb-read-after": token}, timeout=30)
            took = time.monotonic() - started
        finally:
            thaw()
        wait_for(lambda: idle(served, db), 10, what="connections back")
    assert answer.status_code == 200 and answer.json() == {"by": "primary"}, answer.text
    assert took < 1.5, f"a token read took {took:.1f} s (read-after wait 0.25 s, command timeout 3 s)"


@pytest.mark.parametrize("leave_transaction_open", [True, False])
def test_a_read_that_succeeded_is_answered_even_if_its_connection_breaks_before_the_release(
    pg: HotStandbyCluster, leave_transaction_open: bool
) -> None:
    # The block got its rows; then the server ends the session (a switchover's shutdown, as in a
    # burst of requests during one) before the release. asyncpg's release resets the session
    # (ROLLBACK of a transaction the handler left open; the pool's reset query) and raises when it
    # cannot: that error left `async with db.read()` and failed a request that had its answer —
    # a 503, or a bare 500 for asyncpg's InternalClientError, seen in a switchover under load.
    db = Database(kit_settings(pg))
    app = new_app(db)
    faults_left = [1]  # the first request only

    @app.get("/read")
    async def read() -> Response:
        async with db.read() as conn:
            if leave_transaction_open:
                await conn.execute("BEGIN")  # careless: never committed
            pid = conn.get_server_pid()

            def ended_after_the_read(record: Any) -> None:
                if record.query.startswith("SELECT 41") and faults_left:  # as soon as the answer arrived
                    faults_left.pop()
                    os.kill(pid, signal.SIGTERM)

            conn.add_query_logger(ended_after_the_read)
            value = await conn.fetchval("SELECT 41 + 1")
        return Response(f'{{"value": {value}}}'.encode(), media_type="application/json")

    with InProcessApp(app) as served:
        ready(served, db)
        answer = httpx.get(served.url + "/read", timeout=10)
        wait_for(lambda: idle(served, db), 10, what="connections back")
        assert httpx.get(served.url + "/read", timeout=10).status_code == 200  # the pool carries on
    assert answer.status_code == 200 and answer.json() == {"value": 42}, answer.text


# -- failover -----------------------------------------------------------------------------------


def test_reads_carry_on_from_the_replica_while_the_primary_is_down(
    pg: HotStandbyCluster, sidecar_env: dict[str, str]
) -> None:
    # Issue 20 (failover): writes are held during a switchover, "reads carry on meanwhile". With
    # the primary down the sidecar cannot measure lag (no primary position), but no commit can
    # make the replica fall further behind either: the lag last measured holds and the replica
    # keeps serving (it once sent every read to the primary, the one server that is down).
    env = {**sidecar_env, "FASTERDB_READ_AFTER_KEY": KEY}
    with SidecarProcess(sidecar_env) as sidecar, example_app(env, sidecar=sidecar, name="outage") as app:
        wait_for(lambda: httpx.post(app.url + "/items", json={"name": "x"}).status_code == 201, 20, what="app")
        item = httpx.post(app.url + "/items", json={"name": "before the outage"}).json()["id"]
        wait_for(
            lambda: app.get(f"/items/{item}").headers.get("fasterdb-served-by") == "replica-1",
            20,
            what="the row read from the replica",
        )
        pg.stop_node(pg.primary, "immediate")  # the autouse fixture starts it again
        wait_for(lambda: sidecar.get("/health/replicas").json()["primary_lsn"] is None, 10, what="the primary down")
        wait_for(lambda: app.get(f"/items/{item}").status_code == 200, 10, 0.1, "a read while the primary is down")
        answers = [app.get(f"/items/{item}") for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10, answers[0].text
    assert all(a.headers["fasterdb-served-by"] == "replica-1" for a in answers)


def test_a_burst_of_writes_through_a_switchover_is_answered_truthfully() -> None:
    # Eight clients write without pause through a multi-host DSN while the primary stops and the
    # replica is promoted. Every answer must say what happened: 201 for a row that is there, a
    # JSON 503 with Retry-After otherwise — database_unavailable only for a row that is not there
    # (a retry must not write it twice), outcome_unknown where COMMIT's answer was lost. On main,
    # now and then a committed write came back as a bare 500 (its position query or its release
    # failing as the server shut down).
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
        app_env = {**env, "FASTERDB_READ_AFTER_KEY": KEY, "FASTERDB_POOL_MAX_SIZE": "4"}
        with SidecarProcess(env) as sidecar, example_app(app_env, sidecar=sidecar, name="burst") as app:
            wait_for(lambda: httpx.post(app.url + "/items", json={"name": "x"}).status_code == 201, 20, what="app")
            answers: list[tuple[str, httpx.Response]] = []
            lock = threading.Lock()
            stop = threading.Event()

            def writer(n: int) -> None:
                with httpx.Client(timeout=30) as client:
                    for i in range(400):  # bounded
                        if stop.is_set():
                            return
                        name = f"burst-{n}-{i}"
                        answer = client.post(app.url + "/items", json={"name": name})
                        with lock:
                            answers.append((name, answer))

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            try:
                wait_for(lambda: len(answers) > 100, 30, what="writes flowing")
                c.stop_node(old, "fast")
                c.pg_ctl(new, "promote")
                before = len(answers)
                wait_for(lambda: len(answers) > before + 200, 60, what="writes after the switchover")
            finally:
                stop.set()
                for t in threads:
                    t.join(60)
            written = set(c.sql(new, "SELECT name FROM items WHERE name LIKE 'burst-%'").split())
            wait_for(
                lambda: all(p["in_use"] == 0 for p in sidecar.get("/pools").json()["pools"] if p.get("app") == "burst"),
                10,
                what="the application's connections back in its pools",
            )
    wrong = []
    for name, answer in answers:
        if answer.status_code == 201:
            ok = name in written
        elif answer.status_code == 503 and answer.headers.get("retry-after") == "1":
            code = answer.json()["error"]["code"]
            ok = code == "outcome_unknown" or (code == "database_unavailable" and name not in written)
        else:
            ok = False
        if not ok:
            wrong.append(f"{name}: {answer.status_code} {answer.text[:100]} (written: {name in written})")
    assert not wrong, wrong


def test_writes_reach_the_promoted_replica_when_the_old_primary_hangs() -> None:
    # The failover the multi-host DSN is for: the primary's host stops answering (frozen, or a
    # network partition: TCP hangs rather than refuses) and the replica is promoted. libpq gives
    # each host of a multi-host DSN its own connect_timeout; asyncpg's timeout covers the whole
    # list, so the first host, which hangs, used all of it and writes failed with 503 "timeout"
    # for as long as it hung. Each host now gets the timeout of its own (fasterdb.pools.hosts).
    with HotStandbyCluster(replicas=1) as c:
        old, new = c.primary, c.replica_nodes[0]
        password = quote(c.app_password, safe="")
        both = f"postgresql://{APP_USER}:{password}@127.0.0.1:{old.port},127.0.0.1:{new.port}/{DATABASE}"
        c.sql(
            old,
            "CREATE TABLE public.hung (id serial, x int); GRANT ALL ON public.hung TO PUBLIC; "
            "GRANT ALL ON SEQUENCE public.hung_id_seq TO PUBLIC",
        )
        settings = KitSettings.from_env(
            {
                "FASTERDB_PRIMARY_DSN": both,
                "FASTERDB_SIDECAR_URL": "",
                "FASTERDB_POOL_MAX_SIZE": "3",
                "FASTERDB_COMMAND_TIMEOUT": "1",
                "FASTERDB_CONNECT_TIMEOUT": "1",
                "FASTERDB_ACQUIRE_TIMEOUT": "2",
            }
        )
        db = Database(settings)
        app = new_app(db)

        @app.post("/w")
        async def write() -> Response:
            async with db.write() as conn:
                await conn.execute("INSERT INTO public.hung (x) VALUES (1)")
            return Response(b"{}", 201, media_type="application/json")

        with InProcessApp(app) as served:
            ready(served, db)
            assert httpx.post(served.url + "/w", timeout=10).status_code == 201
            thaw = faults.freeze(old)
            try:
                c.pg_ctl(new, "promote")
                wait_for(lambda: c.sql(new, "SELECT NOT pg_is_in_recovery()") == "t", 20, what="promoted")
                wait_for(
                    lambda: httpx.post(served.url + "/w", timeout=30).status_code == 201,
                    15,
                    0.1,
                    "a write on the promoted replica while the old primary hangs",
                )
            finally:
                thaw()


def test_a_read_whose_replica_fails_is_counted_where_it_was_answered(pg: HotStandbyCluster) -> None:
    """A read routed to a replica that cannot be reached is answered by the primary and counted
    there (reads:primary, read:replica_error), never as the replica's; a read that no server
    answers — the primary's connections all held past the acquire timeout, or cancelled while it
    waits — is counted nowhere, and its request names no server. The counts only grow (they are
    Prometheus counters at the sidecar): a read is counted once a server has given it a connection."""
    unreachable = f"postgresql://{APP_USER}:x@127.0.0.1:{free_port()}/{DATABASE}"
    db = Database(kit_settings(pg, FASTERDB_REPLICA_DSNS=f"replica-1={unreachable}", FASTERDB_ACQUIRE_TIMEOUT="0.5"))
    app = new_app(db)
    release = asyncio.Event()

    @app.get("/read")
    async def read() -> Response:
        async with db.read() as conn:
            await conn.fetchval("SELECT 1")
        return Response(f'{{"by": "{served_by()}"}}'.encode(), media_type="application/json")

    def reads() -> dict[str, int]:
        return {k: v for k, v in db.counts.items() if k.startswith("reads:")}

    async def route_to_replica() -> None:
        _in_rotation(db, 0)

    async def primary_ready() -> bool:
        return db.primary.ready_for_acquire

    async def hold_primary() -> None:
        async with db.primary.acquire(5), db.primary.acquire(5), db.primary.acquire(5):
            await release.wait()

    async def let_go() -> None:
        release.set()

    async def cancelled_while_waiting() -> None:
        async def one() -> None:
            async with db.read():
                pass

        task = asyncio.ensure_future(one())
        async with asyncio.timeout(5):
            while db.primary.stats.waiting == 0:
                await asyncio.sleep(0.001)
        assert reads() == {"reads:primary": 1, "reads:replica-1": 0}  # a waiting read is not counted yet
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with InProcessApp(app) as served:
        wait_for(lambda: served.call(primary_ready), 20, what="primary pool")
        served.call(route_to_replica)
        answer = served.get("/read")
        assert answer.json() == {"by": "primary"} and answer.headers["fasterdb-served-by"] == "primary"
        assert reads() == {"reads:primary": 1, "reads:replica-1": 0}
        assert db.counts["read:replica_error"] == 1

        holder = served.submit(hold_primary)
        wait_for(lambda: db.primary.held == 3, 10, what="the primary's connections held")
        served.call(route_to_replica)
        refused = httpx.get(served.url + "/read", timeout=10)
        assert refused.status_code == 503 and "fasterdb-served-by" not in refused.headers
        served.call(route_to_replica)
        served.call(cancelled_while_waiting)  # the replica fails again; cancelled while the primary is awaited
        served.call(let_go)
        holder.result(10)
        wait_for(lambda: idle(served, db), 10, what="connections back")
    assert reads() == {"reads:primary": 1, "reads:replica-1": 0}
    assert db.counts["read:replica_error"] == 3
