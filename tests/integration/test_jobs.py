"""Transfer-batch jobs: totals, crash recovery, two workers, throttling, dry runs, the CLI."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import httpx

from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.harness import SidecarProcess, run_cli, wait_for
from tests.integration.test_transfers import AUTH, TOKEN, ledger_state, new_schema, post, seed

ACCOUNTS = 20


def job_env(sidecar_env: dict[str, str], schema: str, **extra: str) -> dict[str, str]:
    return {
        **sidecar_env,
        "FASTERDB_ADMIN_TOKEN": TOKEN,
        "FASTERDB_SCHEMA": schema,
        "FASTERDB_JOB_POLL_INTERVAL": "0.2",
        **extra,
    }


def items(n: int, amount: str = "1.00") -> list[dict[str, object]]:
    """n transfers around a ring of accounts: every account sends and receives, balances stay positive."""
    return [
        {
            "from_account": i % ACCOUNTS + 1,
            "to_account": (i + 1) % ACCOUNTS + 1,
            "amount": amount,
            "idempotency_key": f"job-item-{i}",
        }
        for i in range(n)
    ]


def prepare(sidecar: SidecarProcess) -> None:
    assert httpx.post(sidecar.url + "/admin/migrate", headers=AUTH, timeout=30).status_code == 200
    seed(sidecar, {i: "1000.00" for i in range(1, ACCOUNTS + 1)})


def job(sidecar: SidecarProcess, job_id: int) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{sidecar.url}/jobs/{job_id}", headers=AUTH, timeout=10).json()


def wait_job(
    sidecar: SidecarProcess, job_id: int, statuses: tuple[str, ...] = ("succeeded",), timeout: float = 60
) -> dict:  # type: ignore[type-arg]
    def reached() -> dict | None:  # type: ignore[type-arg]
        doc = job(sidecar, job_id)
        assert doc["status"] not in ("failed", "cancelled") or doc["status"] in statuses, doc
        return doc if doc["status"] in statuses else None

    return wait_for(reached, timeout, 0.1, f"job {job_id} {statuses}")


def submit(
    sidecar: SidecarProcess, batch: list[dict[str, object]], batch_size: int = 100, dry_run: bool = False
) -> int:
    response = post(
        sidecar, "/jobs", {"kind": "transfer-batch", "items": batch, "batch_size": batch_size, "dry_run": dry_run}
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return int(response.json()["job_id"])


def item_counts(pg: HotStandbyCluster, schema: str, job_id: int) -> dict[str, int]:
    out = pg.sql(pg.primary, f"SELECT status, count(*) FROM {schema}.job_items WHERE job_id = {job_id} GROUP BY 1")
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.splitlines() if line}


def test_job_of_5000_items_with_failures_and_duplicates(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    schema = new_schema()
    with SidecarProcess(job_env(sidecar_env, schema)) as sidecar:
        prepare(sidecar)
        batch = items(5000)
        batch[10] = {**batch[10], "amount": "5000.00"}  # insufficient funds: fails alone
        batch[20] = {**batch[20], "to_account": 999}  # unknown account
        batch[30] = {**batch[30], "idempotency_key": "job-item-29"}  # a repeat of item 29 with other accounts
        batch[40] = dict(batch[39])  # an exact repeat: a duplicate
        started = time.monotonic()
        job_id = submit(sidecar, batch, batch_size=250)
        done = wait_job(sidecar, job_id)
        elapsed = time.monotonic() - started
        assert (done["total"], done["applied"], done["duplicates"], done["failed"]) == (5000, 4996, 1, 3)
        codes = sorted(e["code"] for e in done["errors"])
        assert codes == ["account_not_found", "idempotency_conflict", "insufficient_funds"]
        total, rows, low = ledger_state(pg, schema)
        assert total == Decimal("1000.00") * ACCOUNTS and low >= 0
        assert rows == 4996
        assert item_counts(pg, schema, job_id) == {"applied": 4996, "duplicate": 1, "failed": 3}
        print(f"\n5000-item job in {elapsed:.1f}s")


KILLED_JOB_ITEMS = 1200


def test_killed_sidecar_job_is_finished_by_another_without_double_apply(
    sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    schema = new_schema()
    env = job_env(sidecar_env, schema, FASTERDB_JOB_LEASE_SECONDS="2")
    first = SidecarProcess(env).start()
    prepare(first)
    # Killed at 200 applied of 1200: mid-job with room to spare (the 3000 it had were 1800 more
    # items for the second sidecar, at five a batch, and nothing more to check).
    job_id = submit(first, items(KILLED_JOB_ITEMS), batch_size=5)
    wait_for(lambda: job(first, job_id)["applied"] >= 200, 30, 0.02, "200 items applied")
    first.kill()  # SIGKILL mid-job: no cleanup, the lease stays until it expires
    at_kill = item_counts(pg, schema, job_id)
    assert 0 < at_kill.get("applied", 0) < KILLED_JOB_ITEMS, at_kill  # really mid-job
    with SidecarProcess(env) as second:
        done = wait_job(second, job_id, timeout=90)
    assert (done["applied"], done["duplicates"], done["failed"]) == (KILLED_JOB_ITEMS, 0, 0)
    total, rows, low = ledger_state(pg, schema)
    assert rows == KILLED_JOB_ITEMS and total == Decimal("1000.00") * ACCOUNTS and low >= 0
    assert item_counts(pg, schema, job_id) == {"applied": KILLED_JOB_ITEMS}


def test_two_sidecars_on_one_job_never_double_apply(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    schema = new_schema()
    env = job_env(sidecar_env, schema, FASTERDB_JOB_LEASE_SECONDS="1")
    with SidecarProcess(env) as one, SidecarProcess(env) as two:
        prepare(one)
        ids = [
            submit(one, items(1500), batch_size=10),
            submit(two, [{**i, "idempotency_key": f"second-{n}"} for n, i in enumerate(items(1500))], batch_size=10),
        ]
        for job_id in ids:
            done = wait_job(one, job_id, timeout=90)
            assert (done["applied"], done["duplicates"], done["failed"]) == (1500, 0, 0)
    total, rows, low = ledger_state(pg, schema)
    assert rows == 3000 and total == Decimal("1000.00") * ACCOUNTS and low >= 0


def test_replica_lag_throttles_the_job_until_replay_resumes(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    schema = new_schema()
    env = job_env(sidecar_env, schema, FASTERDB_JOB_MAX_REPLICA_LAG_BYTES="1MB")
    with SidecarProcess(env) as sidecar:
        prepare(sidecar)
        replica = pg.replica_nodes[0]
        faults.pause_replay(pg, replica)
        try:
            faults.write_wal(pg, 2)
            # The sidecar has measured the lag (one shared meter) before the job exists: a
            # measurement from before the WAL, still within its max age, would let a batch run.
            lagging = f"{sidecar.url}/health/replicas?max_lag_bytes=1MB"
            wait_for(lambda: httpx.get(lagging, timeout=5).status_code == 503, 10, what="the lag measured")
            job_id = submit(sidecar, items(200), batch_size=50)
            throttled = wait_job(sidecar, job_id, ("throttled",), timeout=20)
            assert "replica-1 lags" in throttled["throttle_reason"]
            for _ in range(5):  # several throttle rounds later, still nothing has run
                assert job(sidecar, job_id)["applied"] == 0
                time.sleep(0.2)
        finally:
            faults.resume_replay(pg, replica)
        done = wait_job(sidecar, job_id, timeout=30)
        assert done["applied"] == 200 and done["throttle_reason"] is None


def test_dry_run_changes_nothing_and_cancel(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    schema = new_schema()
    with SidecarProcess(job_env(sidecar_env, schema)) as sidecar:
        prepare(sidecar)
        before = ledger_state(pg, schema)
        batch = items(50)
        batch[5] = {**batch[5], "amount": "99999.00"}
        done = wait_job(sidecar, submit(sidecar, batch, batch_size=10, dry_run=True))
        assert (done["applied"], done["failed"]) == (49, 1) and done["dry_run"] is True
        assert ledger_state(pg, schema) == before
        bad = post(
            sidecar,
            "/jobs",
            {"kind": "transfer-batch", "items": [{"from_account": 1, "to_account": 2, "amount": "1.001"}]},
        )
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_job")
        assert "item 0" in bad.json()["error"]["message"]
        assert post(sidecar, "/jobs", {"kind": "other", "items": []}).status_code == 422
        assert post(sidecar, "/jobs/999999/cancel").status_code == 404
        finished = post(sidecar, f"/jobs/{done['job_id']}/cancel")
        assert (finished.status_code, finished.json()["error"]["code"]) == (409, "job_finished")
        assert ledger_state(pg, schema) == before
        listed = httpx.get(sidecar.url + "/jobs", headers=AUTH, timeout=5).json()["jobs"]
        assert listed[0]["job_id"] == done["job_id"]


def test_cli_jobs_submit_wait_status_list(sidecar_env: dict[str, str], pg: HotStandbyCluster, tmp_path: Path) -> None:
    schema = new_schema()
    with SidecarProcess(job_env(sidecar_env, schema)) as sidecar:
        base = ["--url", sidecar.url, "--token", TOKEN]
        assert run_cli("db", "migrate", *base).returncode == 0
        assert run_cli("accounts", "seed", "--count", "3", "--balance", "10", *base).returncode == 0
        csv = tmp_path / "batch.csv"
        csv.write_text("from_account,to_account,amount,idempotency_key\n1,2,1.50,a\n2,3,2.00,b\n3,1,500,c\n1,3,0.25\n")
        result = run_cli("jobs", "submit", str(csv), "--wait", "--batch-size", "2", *base, "-o", "json")
        assert result.returncode == 1, result.stderr  # finished, one item failed: WARNING
        body = json.loads(result.stdout)
        assert (body["status"], body["applied"], body["failed"]) == ("succeeded", 3, 1)
        status = run_cli("jobs", "status", str(body["job_id"]), *base)
        assert status.returncode == 1 and "insufficient_funds" in status.stdout
        listed = run_cli("jobs", "list", *base, "-o", "json")
        assert json.loads(listed.stdout)["jobs"][0]["job_id"] == body["job_id"]
        queued = run_cli("jobs", "submit", str(csv), "--dry-run", *base, "-o", "json")
        assert queued.returncode == 0 and json.loads(queued.stdout)["status"] == "queued"
        broken = tmp_path / "broken.csv"
        broken.write_text("1,2\n")
        assert run_cli("jobs", "submit", str(broken), *base).returncode == 3
        assert run_cli("jobs", "submit", str(tmp_path / "missing.csv"), *base).returncode == 3
        assert run_cli("jobs", "cancel", str(body["job_id"]), *base).returncode == 2
        # Items the sidecar refuses: every one by the file's line (the job is refused whole: 2).
        refused = tmp_path / "refused.csv"
        refused.write_text("# payouts\nfrom_account,to_account,amount\n1,2,1.00\n2,2,1.00\n\n3,1,0\n1,3,1.001\n")
        result = run_cli("jobs", "submit", str(refused), *base)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.splitlines() == [
            f"fasterdb-admin: job refused: {refused}: 3 bad lines; nothing was submitted",
            f"  {refused}:4: from_account and to_account must differ",
            f"  {refused}:6: amount must be greater than zero",
            f"  {refused}:7: amount has more than 2 decimals",
        ]


def throttle_metric(sidecar: SidecarProcess) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(sidecar.get("/metrics").text)
    return {s.labels["reason"]: s.value for f in families if f.name == "fasterdb_job_throttled" for s in f.samples}


def test_a_job_submitted_right_after_real_lag_appears_is_throttled(
    sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    """The old gate read a lag snapshot cached for the health TTL (here 60 s): it saw no lag."""
    schema = new_schema()
    env = job_env(
        sidecar_env,
        schema,
        FASTERDB_JOB_MAX_REPLICA_LAG_BYTES="1MB",
        FASTERDB_HEALTH_CACHE_TTL="60",
        FASTERDB_MONITOR_INTERVAL="0",
    )
    replica = pg.replica_nodes[0]
    with SidecarProcess(env) as sidecar:
        prepare(sidecar)
        assert sidecar.get("/health/replicas").status_code == 200  # a caught-up snapshot, cached for 60 s
        measured = time.monotonic()
        faults.pause_replay(pg, replica)
        try:
            faults.write_wal(pg, 4)
            # The gate takes a measurement up to FASTERDB_JOB_LAG_MAX_AGE (0.25 s) old: make sure the
            # caught-up one is older than that (on a fast machine the WAL is written sooner).
            time.sleep(max(0.0, measured + 0.3 - time.monotonic()))
            job_id = submit(sidecar, items(200), batch_size=50)  # at once: no wait for any cache
            throttled = wait_job(sidecar, job_id, ("throttled",), timeout=20)
            assert throttled["applied"] == 0 and "replica replica-1 lags" in throttled["throttle_reason"]
            assert throttle_metric(sidecar) == {
                "replica_lag": 1.0,
                "replica_unknown": 0.0,
                "pool_waiting": 0.0,
                "split_brain": 0.0,
            }
            status = run_cli("jobs", "status", str(job_id), "--url", sidecar.url, "--token", TOKEN)
            assert "replica replica-1 lags" in status.stdout
        finally:
            faults.resume_replay(pg, replica)
        done = wait_job(sidecar, job_id, timeout=30)
        assert done["applied"] == 200 and done["throttle_reason"] is None
        assert throttle_metric(sidecar)["replica_lag"] == 0.0


def test_a_replica_that_stops_answering_throttles_jobs_unless_told_to_ignore_it(
    sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    schema = new_schema()
    replica = pg.replica_nodes[0]

    def seen_down(sidecar: SidecarProcess) -> bool:
        return bool(sidecar.get("/health/replicas").json()["replicas"][0]["state"] == "down")

    with SidecarProcess(job_env(sidecar_env, schema)) as sidecar:
        prepare(sidecar)
        with faults.frozen(replica):  # SIGSTOP: its lag cannot be measured
            wait_for(lambda: seen_down(sidecar), 10, what="the sidecar sees the replica down")
            job_id = submit(sidecar, items(100), batch_size=10)
            throttled = wait_job(sidecar, job_id, ("throttled",), timeout=20)
            assert throttled["applied"] == 0
            assert throttled["throttle_reason"] == "replica replica-1: lag unknown (timeout)"
            assert throttle_metric(sidecar)["replica_unknown"] == 1.0
        assert wait_job(sidecar, job_id, timeout=30)["applied"] == 100
    with SidecarProcess(job_env(sidecar_env, schema, FASTERDB_JOB_UNKNOWN_LAG="ignore")) as sidecar:
        with faults.frozen(replica):
            wait_for(lambda: seen_down(sidecar), 10, what="the sidecar sees the replica down")
            fresh = [{**item, "idempotency_key": f"ignore-{n}"} for n, item in enumerate(items(100))]
            job_id = submit(sidecar, fresh, batch_size=10)
            assert wait_job(sidecar, job_id, timeout=30)["applied"] == 100


def test_job_item_keys_live_in_a_namespace_of_their_own(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    schema = new_schema()
    with SidecarProcess(job_env(sidecar_env, schema)) as sidecar:
        prepare(sidecar)
        # The old derived keys were guessable (job-<id>-<seq>) and shared the clients' namespace.
        taken = post(
            sidecar, "/transfers", {"from_account": 1, "to_account": 2, "amount": "1", "idempotency_key": "job-1-0"}
        )
        assert taken.status_code == 200
        reserved = {"from_account": 1, "to_account": 2, "amount": "1", "idempotency_key": "fasterdb-job:1:0"}
        refused = post(sidecar, "/transfers", reserved)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "invalid_transfer")
        assert "reserved" in refused.json()["error"]["message"]
        bad_item = post(sidecar, "/jobs", {"kind": "transfer-batch", "items": [reserved]})
        assert (bad_item.status_code, bad_item.json()["error"]["code"]) == (422, "invalid_job")
        job_id = submit(sidecar, [{"from_account": 3, "to_account": 4, "amount": "2.00"}])
        assert job_id == 1
        done = wait_job(sidecar, job_id)
        assert (done["applied"], done["duplicates"]) == (1, 0)  # not suppressed by the client's "job-1-0"
        keys = pg.sql(pg.primary, f"SELECT idempotency_key FROM {schema}.transfers ORDER BY id")
        assert keys.splitlines() == ["job-1-0", "fasterdb-job:1:0"]


def claims(pg: HotStandbyCluster, schema: str) -> int:
    """How often any sidecar looked for a job in ``schema`` (pg_stat_statements)."""
    return int(
        pg.sql(
            pg.primary,
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE :'pattern'",
            params={"pattern": f"UPDATE {schema}.jobs SET lease_owner%"},
        )
    )


def test_the_worker_is_quiet_while_the_primary_is_down_and_can_be_off(
    sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    schema = new_schema()
    with SidecarProcess(job_env(sidecar_env, schema)) as sidecar:
        prepare(sidecar)
        pg.stop_node(pg.primary)
        wait_for(lambda: "job worker: cannot look for jobs" in sidecar.logs(), 20, what="the outage line")
        # What is measured is how much gets logged over a stretch of outage: 3 s are 15 polls of the
        # 0.2 s interval (and, with the backoff, still 3 failed looks after the first one).
        time.sleep(3)
        outage = sidecar.logs().count("job worker: cannot look for jobs")
        pg.start_node(pg.primary)
        wait_for(lambda: "job worker: the primary answers again" in sidecar.logs(), 40, what="the recovery line")
    # Once when it started (then once a minute, and it looked less and less often), not per poll.
    assert outage == 1, outage

    # Off: no worker, so nothing polls the primary, and jobs wait for a sidecar that has one.
    off = job_env(sidecar_env, schema, FASTERDB_JOBS_ENABLED="false")
    pg.sql(pg.primary, "SELECT pg_stat_statements_reset()")
    with SidecarProcess(off) as sidecar:
        job_id = submit(sidecar, items(10), batch_size=5)
        time.sleep(1.5)  # ~7 polls of the 0.2 s interval, had there been a worker
        assert job(sidecar, job_id)["status"] == "queued"
        assert claims(pg, schema) == 0
    with SidecarProcess(job_env(sidecar_env, schema)) as sidecar:
        assert wait_job(sidecar, job_id)["applied"] == 10
