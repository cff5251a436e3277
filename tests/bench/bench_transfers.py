"""Transfers per second through the sidecar vs pgbench running the same SQL transaction.

* single calls: POST /transfers from 16 concurrent wrk connections (unique keys, random pairs);
* a transfer-batch job of 20,000 items (batch_size 500), from submit to succeeded;
* pgbench, 16 clients, a custom script with the transaction /transfers runs (key lookup, both
  rows locked in id order, ledger insert, balance update), on the same database in the same run.

Targets (issue 24): single calls >= 0.8 of pgbench running the same transaction with the same
guarantee, the job path >= 0.8.

Single calls are measured twice, side by side: with the default replication acknowledgement
(``FASTERDB_TRANSFER_ACK=replica``: the 200 waits until a standby flushed the COMMIT) against
pgbench under PostgreSQL's synchronous replication (``synchronous_standby_names = '*'``, COMMIT
waits for the standby's flush: the same guarantee), and with ``primary`` (the 200 at COMMIT)
against plain pgbench. The quotient of the two sidecar figures is what "no acknowledged cent
lost in a split brain" costs.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from devtools.cluster import ADMIN_USER, DATABASE
from devtools.hot_standby import HotStandbyCluster
from tests.bench.common import Figure, ensure_wrk, median
from tests.harness import SidecarProcess, wait_for

TOKEN = "bench-token-0123456789abcdef"
ACCOUNTS = 1000
SECONDS = 5
SCHEMA = "fasterdb"

WRK_SCRIPT = f"""
counter = 0
request = function()
  counter = counter + 1
  local src = math.random(1, {ACCOUNTS})
  local dst = src % {ACCOUNTS} + 1
  local body = string.format('{{"from_account":%d,"to_account":%d,"amount":"0.01","idempotency_key":"wrk-%d-%d"}}',
                             src, dst, math.random(1, 1000000000), counter)
  return wrk.format("POST", "/transfers",
                    {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {TOKEN}"}}, body)
end
response = function(status, headers, body)
  if status ~= 200 then io.stderr:write("status " .. status .. "\\n") end
end
"""

PGBENCH_SCRIPT = f"""
\\set src random(1, {ACCOUNTS})
\\set dst 1 + :src % {ACCOUNTS}
\\set k random(1, 1000000000000)
BEGIN;
SELECT id FROM {SCHEMA}.transfers WHERE idempotency_key = 'pgb-' || :client_id || '-' || :k;
SELECT id, balance FROM {SCHEMA}.accounts WHERE id IN (:src, :dst) ORDER BY id FOR UPDATE;
INSERT INTO {SCHEMA}.transfers (idempotency_key, from_account, to_account, amount, from_balance_after,
  to_balance_after) VALUES ('pgb-' || :client_id || '-' || :k, :src, :dst, 0.01, 0, 0)
  ON CONFLICT (idempotency_key) DO NOTHING;
UPDATE {SCHEMA}.accounts SET balance = balance + CASE WHEN id = :dst THEN 0.01 ELSE -0.01 END
  WHERE id IN (:src, :dst);
END;
"""


# The same transaction in the sidecar's four round trips (ledger.sql: lock_and_find, record).
PGBENCH_FOLDED = f"""
\\set src random(1, {ACCOUNTS})
\\set dst 1 + :src % {ACCOUNTS}
\\set k random(1, 1000000000000)
BEGIN;
WITH locked AS (SELECT id, balance FROM {SCHEMA}.accounts WHERE id IN (:src, :dst) ORDER BY id FOR UPDATE)
  SELECT id, balance FROM locked UNION ALL
  SELECT id, NULL FROM {SCHEMA}.transfers WHERE idempotency_key = 'pgf-' || :client_id || '-' || :k;
WITH ins AS (INSERT INTO {SCHEMA}.transfers (idempotency_key, from_account, to_account, amount, from_balance_after,
  to_balance_after) VALUES ('pgf-' || :client_id || '-' || :k, :src, :dst, 0.01, 0, 0)
  ON CONFLICT (idempotency_key) DO NOTHING RETURNING id),
  upd AS (UPDATE {SCHEMA}.accounts SET balance = balance + CASE WHEN id = :dst THEN 0.01 ELSE -0.01 END
  WHERE id IN (:src, :dst))
  SELECT id FROM ins;
END;
"""


@contextlib.contextmanager
def _synchronous_replication(pg: HotStandbyCluster) -> Iterator[None]:
    """PostgreSQL's own guarantee for the baseline: COMMIT waits until the standby flushed it."""
    assert pg.primary is not None
    pg.sql(pg.primary, "ALTER SYSTEM SET synchronous_standby_names = '*'")
    pg.sql(pg.primary, "SELECT pg_reload_conf()")
    try:
        wait_for(
            lambda: (
                pg.sql(pg.primary, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == "1"  # type: ignore[arg-type]
                and pg.sql(pg.primary, "SHOW synchronous_standby_names") == "*"
            ),  # type: ignore[arg-type]
            30,
            what="the standby synchronous",
        )
        yield
    finally:
        pg.sql(pg.primary, "ALTER SYSTEM RESET synchronous_standby_names")
        pg.sql(pg.primary, "SELECT pg_reload_conf()")
        wait_for(lambda: pg.sql(pg.primary, "SHOW synchronous_standby_names") == "", 30, what="asynchronous again")  # type: ignore[arg-type]


def _pgbench(pg: HotStandbyCluster, script: Path) -> float:
    assert pg.bindir is not None and pg.primary is not None
    out = subprocess.run(
        [
            str(pg.bindir / "pgbench"),
            "-n",
            "-c",
            "16",
            "-j",
            "2",
            "-T",
            str(SECONDS),
            "-f",
            str(script),
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.primary.port),
            "-U",
            ADMIN_USER,
            DATABASE,
        ],
        env=dict(os.environ, PGPASSWORD=pg.admin_password),
        capture_output=True,
        text=True,
        check=True,
        timeout=SECONDS + 60,
    ).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


def _wrk(url: str, script: Path) -> float:
    out = subprocess.run(
        [ensure_wrk(), "-t", "2", "-c", "16", "-d", f"{SECONDS}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=SECONDS + 60,
    )
    assert "status" not in out.stderr, out.stderr[:300]
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]


def _job(url: str, n: int) -> float:
    items = [
        {
            "from_account": i % ACCOUNTS + 1,
            "to_account": (i + 1) % ACCOUNTS + 1,
            "amount": "0.01",
            "idempotency_key": f"job-{time.time_ns()}-{i}",
        }
        for i in range(n)
    ]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.monotonic()
    r = httpx.post(
        url + "/jobs", json={"kind": "transfer-batch", "items": items, "batch_size": 500}, headers=headers, timeout=60
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    while (doc := httpx.get(f"{url}/jobs/{job_id}", headers=headers, timeout=10).json())["status"] != "succeeded":
        assert doc["status"] in ("queued", "running", "throttled"), doc
        time.sleep(0.02)
    assert doc["applied"] == n
    return n / (time.monotonic() - started)


def main() -> list[Figure]:
    """Run the benchmark and print its figures."""
    env_extra = {
        "FASTERDB_ADMIN_TOKEN": TOKEN,
        "FASTERDB_JOB_POLL_INTERVAL": "0.05",
        "FASTERDB_POOL_MAX_SIZE": "16",
        "FASTERDB_LOG_LEVEL": "warning",
    }
    with HotStandbyCluster(replicas=1) as pg, tempfile.TemporaryDirectory() as tmp:
        at_commit = {**pg.sidecar_env(), **env_extra, "FASTERDB_TRANSFER_ACK": "primary", "FASTERDB_JOBS_ENABLED": "0"}
        with SidecarProcess({**pg.sidecar_env(), **env_extra}) as sidecar, SidecarProcess(at_commit) as unacked:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            assert httpx.post(sidecar.url + "/admin/migrate", headers=headers, timeout=60).status_code == 200
            pg.sql(
                pg.primary,
                f"INSERT INTO {SCHEMA}.accounts (id, balance) SELECT g, 1000000 FROM generate_series(1, {ACCOUNTS}) g",
            )
            pg.sql(pg.primary, f"GRANT ALL ON ALL TABLES IN SCHEMA {SCHEMA} TO {ADMIN_USER}")
            (Path(tmp) / "t.lua").write_text(WRK_SCRIPT)
            (Path(tmp) / "t.sql").write_text(PGBENCH_SCRIPT)
            (Path(tmp) / "f.sql").write_text(PGBENCH_FOLDED)
            single, primary_ack, jobs, bench, folded, synced = [], [], [], [], [], []
            for _ in range(2):  # interleaved rounds
                bench.append(_pgbench(pg, Path(tmp) / "t.sql"))
                with _synchronous_replication(pg):
                    synced.append(_pgbench(pg, Path(tmp) / "t.sql"))
                folded.append(_pgbench(pg, Path(tmp) / "f.sql"))
                single.append(_wrk(sidecar.url, Path(tmp) / "t.lua"))
                primary_ack.append(_wrk(unacked.url, Path(tmp) / "t.lua"))
                jobs.append(_job(sidecar.url, 20000))
            total = pg.sql(pg.primary, f"SELECT sum(balance) FROM {SCHEMA}.accounts")
    base = median(bench)
    print("== transfers per second: sidecar vs pgbench (same transaction, 16 clients, same database) ==")
    print(f"  pgbench, 16 clients                 {base:9.0f} tps   (six statements, as a client writes them)")
    print(f"  pgbench, the sidecar's 4 round trips {median(folded):8.0f} tps")
    print(f"  pgbench, synchronous replication    {median(synced):9.0f} tps   (COMMIT waits for the standby's flush)")
    print(
        f"  POST /transfers, 16 connections     {median(single):9.0f} /s   ratio {median(single) / median(synced):5.2f}"
        f"   (target >= 0.8 of pgbench with synchronous replication; acknowledged once a standby"
        f" flushed the COMMIT, the default; {median(single) / base:4.2f} of plain pgbench)"
    )
    print(
        f"  POST /transfers, ack at COMMIT      {median(primary_ack):9.0f} /s   ratio {median(primary_ack) / base:5.2f}"
        f"   (FASTERDB_TRANSFER_ACK=primary; the standby's acknowledgement costs"
        f" {1 - median(single) / median(primary_ack):4.0%};"
        f" to the folded script {median(primary_ack) / median(folded):4.2f})"
    )
    print(
        f"  transfer-batch job (batch 500)      {median(jobs):9.0f} /s   ratio {median(jobs) / base:5.2f}"
        "   (target >= 0.8)"
    )
    print(f"  money check: sum of balances {total} (expected {ACCOUNTS * 1000000}.00)")
    acked_ratio, at_commit_ratio = median(single) / median(synced), median(primary_ack) / base
    job_ratio = median(jobs) / base
    return [
        Figure("POST /transfers (standby ack) / pgbench sync rep", acked_ratio, "x", ">= 0.8", acked_ratio >= 0.8),
        Figure("POST /transfers (ack at COMMIT) / pgbench", at_commit_ratio, "x", ">= 0.8", at_commit_ratio >= 0.8),
        Figure("transfer-batch job / pgbench", job_ratio, "x", ">= 0.8", job_ratio >= 0.8),
    ]


if __name__ == "__main__":
    main()
