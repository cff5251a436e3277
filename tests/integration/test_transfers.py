"""Transfers, accounts, migrations and admin auth against a real primary + replica, with faults."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.harness import SidecarProcess, run_cli, wait_for

TOKEN = "test-token-" + "x" * 16
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def new_schema() -> str:
    return "t_" + uuid.uuid4().hex[:10]


@pytest.fixture()
def schema() -> str:
    return new_schema()


@pytest.fixture()
def admin(sidecar_env: dict[str, str], schema: str) -> Iterator[SidecarProcess]:
    """A sidecar with an admin token and a freshly migrated schema of its own."""
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_SCHEMA=schema)
    with SidecarProcess(env) as proc:
        response = httpx.post(proc.url + "/admin/migrate", headers=AUTH, timeout=30)
        assert response.status_code == 200, response.text
        yield proc


def post(
    sidecar: SidecarProcess,
    path: str,
    body: object = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(sidecar.url + path, content=content, headers=AUTH if headers is None else headers, timeout=30)


def seed(sidecar: SidecarProcess, balances: dict[int, str]) -> None:
    for account_id, balance in balances.items():
        response = post(sidecar, "/accounts", {"id": account_id, "balance": balance})
        assert response.status_code == 201, response.text


def ledger_state(pg: HotStandbyCluster, schema: str) -> tuple[Decimal, int, Decimal]:
    """(sum of balances, number of transfers rows, smallest balance) read on the primary."""
    total, rows, low = pg.sql(
        pg.primary,
        f"SELECT (SELECT coalesce(sum(balance), 0) FROM {schema}.accounts),"
        f" (SELECT count(*) FROM {schema}.transfers), (SELECT coalesce(min(balance), 0) FROM {schema}.accounts)",
    ).split("|")
    return Decimal(total), int(rows), Decimal(low)


def test_admin_auth(sidecar_env: dict[str, str], admin: SidecarProcess) -> None:
    with SidecarProcess(sidecar_env) as no_token:  # FASTERDB_ADMIN_TOKEN unset
        response = post(no_token, "/transfers", {}, headers={})
        assert response.status_code == 403
        assert "FASTERDB_ADMIN_TOKEN" in response.json()["error"]["message"]
        assert post(no_token, "/admin/migrate", headers=AUTH).status_code == 403
        assert no_token.get("/health/db").status_code == 200  # open endpoints stay open
    for path in ("/admin/migrate", "/transfers", "/accounts", "/jobs"):
        assert post(admin, path, {}, headers={}).status_code == 401
        assert post(admin, path, {}, headers={"Authorization": "Bearer wrong-token-123456789"}).status_code == 401
        assert post(admin, path, {}, headers={"Authorization": TOKEN}).status_code == 401
    assert httpx.get(admin.url + "/accounts/1", timeout=5).status_code == 401
    assert httpx.get(admin.url + "/jobs", timeout=5).status_code == 401
    assert TOKEN not in admin.logs()


def test_accounts_and_a_transfer(admin: SidecarProcess, pg: HotStandbyCluster, schema: str) -> None:
    seed(admin, {1: "100.00", 2: "0"})
    assert post(admin, "/accounts", {"id": 1, "balance": "5"}).json()["error"]["code"] == "account_exists"
    response = post(
        admin, "/transfers", {"from_account": 1, "to_account": 2, "amount": "10.50", "idempotency_key": "a"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "applied" and body["duplicate"] is False
    assert (body["from_balance"], body["to_balance"], body["amount"]) == ("89.50", "10.50", "10.50")
    # a JSON number with two decimals is accepted too, and a repeat returns the original
    again = post(admin, "/transfers", {"from_account": 1, "to_account": 2, "amount": 10.50, "idempotency_key": "a"})
    assert again.status_code == 200 and again.json() == {**body, "duplicate": True}
    primary = httpx.get(admin.url + "/accounts/1?source=primary", headers=AUTH, timeout=5).json()
    assert primary == {"id": 1, "balance": "89.50", "source": "primary"}
    r = wait_for(
        lambda: (a := httpx.get(admin.url + "/accounts/2", headers=AUTH, timeout=5).json())["balance"] == "10.50" and a,
        5,
        what="the replica catches up",
    )
    assert r["source"] == "replica-1"
    assert httpx.get(admin.url + "/accounts/999", headers=AUTH, timeout=5).status_code == 404
    assert httpx.get(admin.url + "/accounts/abc", headers=AUTH, timeout=5).status_code == 400
    assert ledger_state(pg, schema) == (Decimal("100.00"), 1, Decimal("10.50"))


BAD = [
    ({"from_account": 1, "to_account": 2, "amount": "-1", "idempotency_key": "b1"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "0", "idempotency_key": "b2"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "1.005", "idempotency_key": "b3"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": 1.005, "idempotency_key": "b3n"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "1e20", "idempotency_key": "b4"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "NaN", "idempotency_key": "b5"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "Infinity", "idempotency_key": "b6"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "ten", "idempotency_key": "b7"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 1, "amount": "1", "idempotency_key": "b8"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 3, "amount": "1", "idempotency_key": "b9"}, 404, "account_not_found"),
    ({"from_account": 1, "to_account": 2, "amount": "100.01", "idempotency_key": "b10"}, 409, "insufficient_funds"),
    ({"from_account": 1, "to_account": 2, "amount": "1"}, 422, "invalid_transfer"),
    ({"from_account": "1", "to_account": 2, "amount": "1", "idempotency_key": "b12"}, 422, "invalid_transfer"),
    ({"from_account": True, "to_account": 2, "amount": "1", "idempotency_key": "b13"}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "1", "idempotency_key": ""}, 422, "invalid_transfer"),
    ({"from_account": 1, "to_account": 2, "amount": "1", "idempotency_key": "k" * 201}, 422, "invalid_transfer"),
    ({"from_account": 2**63, "to_account": 2, "amount": "1", "idempotency_key": "b16"}, 422, "invalid_transfer"),
    ([1, 2], 422, "invalid_transfer"),
]


def test_bad_input_changes_nothing(admin: SidecarProcess, pg: HotStandbyCluster, schema: str) -> None:
    seed(admin, {1: "100.00", 2: "0"})
    before = ledger_state(pg, schema)
    for body, status, code in BAD:
        response = post(admin, "/transfers", body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    for raw in (b"{not json", b"", b'{"from_account": 1'):
        response = post(admin, "/transfers", raw=raw)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_transfer"), raw
    assert post(admin, "/transfers", {}, headers={}).status_code == 401
    assert ledger_state(pg, schema) == before
    assert (
        post(
            admin,
            "/transfers",
            {"from_account": 1, "to_account": 2, "amount": "1", "idempotency_key": "x"},
            headers={"Authorization": "Bearer nope-nope-nope-nope"},
        ).status_code
        == 401
    )
    assert ledger_state(pg, schema) == before


def test_idempotency_sequential_concurrent_and_conflict(
    admin: SidecarProcess, pg: HotStandbyCluster, schema: str
) -> None:
    seed(admin, {1: "100.00", 2: "0"})
    body = {"from_account": 1, "to_account": 2, "amount": "7.25", "idempotency_key": "same"}
    results: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda: results.append(post(admin, "/transfers", body))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results)
    assert sorted(r.json()["duplicate"] for r in results) == [False] + [True] * 7
    assert len({r.json()["transfer_id"] for r in results}) == 1
    assert post(admin, "/transfers", body).json()["duplicate"] is True
    conflict = post(admin, "/transfers", {**body, "amount": "7.26"})
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert ledger_state(pg, schema) == (Decimal("100.00"), 1, Decimal("7.25"))


@pytest.mark.parametrize("other_commits", [True, False], ids=["commits", "rolls-back"])
def test_a_key_inserted_concurrently_is_seen_once_the_other_transaction_ends(
    admin: SidecarProcess, pg: HotStandbyCluster, schema: str, other_commits: bool
) -> None:
    """The one-statement transfer meets its key mid-flight: it waits on the other transaction's
    insert, writes nothing if that commits (and runs again: the key is then a conflict, here), and
    applies if it rolls back."""
    seed(admin, {1: "100.00", 2: "0", 3: "50.00", 4: "0"})
    body = {"from_account": 1, "to_account": 2, "amount": "5.00", "idempotency_key": "raced"}
    result: dict[str, httpx.Response] = {}
    with faults.Session(pg, "fasterdb-test/racer") as other:
        other.ask(
            f"BEGIN; UPDATE {schema}.accounts SET balance = balance + CASE id WHEN 3 THEN -7 ELSE 7 END"
            f" WHERE id IN (3, 4); INSERT INTO {schema}.transfers (idempotency_key, from_account, to_account,"
            " amount, from_balance_after, to_balance_after) VALUES ('raced', 3, 4, 7, 43, 7) RETURNING 'held';"
        )
        thread = threading.Thread(target=lambda: result.setdefault("r", post(admin, "/transfers", body)))
        thread.start()
        waiting = (
            f"SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'transactionid' AND query LIKE '%{schema}%'"
        )
        wait_for(lambda: pg.sql(pg.primary, waiting) == "1", what="the transfer waits on the other insert of its key")
        other.ask("COMMIT; SELECT 'ended';" if other_commits else "ROLLBACK; SELECT 'ended';")
        thread.join(timeout=30)
    response = result["r"]
    total, rows, _ = ledger_state(pg, schema)
    assert total == Decimal("150.00")
    if other_commits:
        assert (response.status_code, response.json()["error"]["code"]) == (409, "idempotency_conflict")
        assert rows == 1  # the other transfer only; accounts 1 and 2 untouched
        balances = pg.sql(pg.primary, f"SELECT string_agg(balance::text, ',' ORDER BY id) FROM {schema}.accounts")
        assert balances == "100.00,0.00,43.00,7.00"
    else:
        assert response.status_code == 200 and response.json()["duplicate"] is False, response.text
        assert (rows, response.json()["from_balance"], response.json()["to_balance"]) == (1, "95.00", "5.00")


# 800 transfers by 32 clients; after every 5th answered one, every backend of the sidecar's primary
# pool is terminated: about as many rounds of terminations (160) as the 2000 transfers had with a
# psql process per round and a pause of 0.1 s, and a ratio that no longer depends on the machine.
TRANSFERS = 800
KILL_EVERY = 5
TERMINATE_PRIMARY_POOL = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE application_name LIKE 'fasterdb-sidecar/primary%' AND pid <> pg_backend_pid();"
)


def test_money_is_conserved_under_concurrency_and_killed_backends(
    admin: SidecarProcess, pg: HotStandbyCluster, schema: str
) -> None:
    accounts = {i: "500.00" for i in range(1, 21)}
    seed(admin, accounts)
    initial = Decimal("500.00") * 20
    rng = secrets.SystemRandom()
    transfers = []
    for n in range(TRANSFERS):
        src, dst = rng.sample(range(1, 21), 2)
        transfers.append(
            {
                "from_account": src,
                "to_account": dst,
                "amount": f"{rng.randint(1, 9000) / 100:.2f}",
                "idempotency_key": f"t{n}",
            }
        )
    acknowledged: set[str] = set()
    refused: dict[str, int] = {}
    unexpected: list[tuple[int, str]] = []
    terminations = rounds = answered = 0
    stop = threading.Event()

    def killer() -> None:
        # One psql session asks each round (a process per round cost more than the transfers between
        # two rounds on a busy machine); a round per KILL_EVERY answers, so the transfers always get on.
        nonlocal terminations, rounds
        with faults.Session(pg, "fasterdb-test/killer") as session:
            last = 0
            while not stop.is_set():
                if answered - last < KILL_EVERY:
                    time.sleep(0.005)
                    continue
                last = answered
                terminations += int(session.ask(TERMINATE_PRIMARY_POOL) or 0)
                rounds += 1

    async def client(queue: asyncio.Queue[dict[str, object]], http: httpx.AsyncClient) -> None:
        nonlocal answered
        while not queue.empty():
            body = queue.get_nowait()
            for _attempt in range(40):  # 503 is retryable with the same key; bounded
                response = await http.post("/transfers", json=body, headers=AUTH)
                if response.status_code == 503:
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code == 200:
                    acknowledged.add(str(body["idempotency_key"]))
                elif response.status_code == 409 and response.json()["error"]["code"] == "insufficient_funds":
                    refused[str(body["idempotency_key"])] = 409
                else:
                    unexpected.append((response.status_code, response.text[:200]))
                break
            else:
                unexpected.append((503, f"still unavailable after retries: {body['idempotency_key']}"))
            answered += 1

    async def run() -> None:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        for body in transfers:
            queue.put_nowait(body)
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=admin.url, timeout=30, limits=limits) as http:
            await asyncio.gather(*(client(queue, http) for _ in range(32)))

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        asyncio.run(run())
    finally:
        stop.set()
        thread.join()
    elapsed = time.monotonic() - started
    assert unexpected == [], (unexpected[:5], [line for line in admin.logs().splitlines() if "unhandled" in line][:2])
    assert terminations > 0
    total, rows, low = ledger_state(pg, schema)
    assert total == initial  # money neither appeared nor vanished
    assert low >= 0
    assert rows == len(acknowledged)  # one ledger row per acknowledged key, none for refused ones
    assert len(acknowledged) + len(refused) == len(transfers)
    logs = admin.logs()
    assert "Traceback" not in logs and pg.app_password not in logs
    print(
        f"\n{TRANSFERS} transfers, 32 clients, {terminations} backends terminated in {rounds} rounds, {elapsed:.1f}s, "
        f"{len(acknowledged)} applied, {len(refused)} refused for funds"
    )


def test_migrations_twice_and_concurrently(sidecar_env: dict[str, str], schema: str) -> None:
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_SCHEMA=schema)
    with SidecarProcess(env) as one, SidecarProcess(env) as two:
        results: list[httpx.Response] = []

        def migrate(proc: SidecarProcess) -> None:
            results.append(httpx.post(proc.url + "/admin/migrate", headers=AUTH, timeout=30))

        threads = [threading.Thread(target=migrate, args=(p,)) for p in (one, two, one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        outs = [r.json() for r in results]
        assert sorted(len(o["applied"]) for o in outs) == [0, 0, 0, 1]
        assert all(o["version"] == 1 for o in outs)
        again = run_cli("db", "migrate", "--url", one.url, "--token", TOKEN, "-o", "json")
        assert again.returncode == 0 and json.loads(again.stdout) == {"schema": schema, "version": 1, "applied": []}


def test_cli_transfer_and_accounts(admin: SidecarProcess) -> None:
    base = ["--url", admin.url, "--token", TOKEN]
    seeded = run_cli("accounts", "seed", "--count", "3", "--balance", "50", *base, "-o", "json")
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout)["created"] == 3
    again = run_cli("accounts", "seed", "--count", "3", "--balance", "50", *base, "-o", "json")
    assert json.loads(again.stdout) == {"created": 0, "existing": 3, "first_id": 1, "last_id": 3}
    ok = run_cli("transfer", "--from", "1", "--to", "2", "--amount", "5.25", *base, "-o", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["idempotency_key"].startswith("cli-") and ok.stderr == ""
    assert json.loads(ok.stdout)["to_balance"] == "55.25"
    keyed = run_cli("transfer", "--from", "1", "--to", "2", "--amount", "1", "--idempotency-key", "k1", *base)
    assert keyed.returncode == 0 and "k1" in keyed.stdout
    dup = run_cli(
        "transfer", "--from", "1", "--to", "2", "--amount", "1", "--idempotency-key", "k1", *base, "-o", "json"
    )
    assert json.loads(dup.stdout)["duplicate"] is True
    poor = run_cli("transfer", "--from", "3", "--to", "1", "--amount", "1000", *base)
    assert poor.returncode == 2 and "insufficient funds" in poor.stderr and "Traceback" not in poor.stderr
    assert "retry" not in poor.stderr  # a retry cannot help: no advice to retry
    bad = run_cli("transfer", "--from", "3", "--to", "1", "--amount", "1.001", *base)
    assert bad.returncode == 2 and "more than 2 decimals" in bad.stderr
    # Token failures are configuration errors (3) in every command, with the same words.
    no_token = run_cli("transfer", "--from", "1", "--to", "2", "--amount", "1", "--url", admin.url)
    assert no_token.returncode == 3 and "set FASTERDB_ADMIN_TOKEN or use --token" in no_token.stderr
    assert "retry" not in no_token.stderr  # nothing was sent
    wrong_token = ["--url", admin.url, "--token", "x" * 20]
    wrong = run_cli("transfer", "--from", "1", "--to", "2", "--amount", "1", *wrong_token)
    assert wrong.returncode == 3 and "the admin token was refused" in wrong.stderr
    for command in (["db", "migrate"], ["jobs", "list"], ["accounts", "show", "1"], ["activity"]):
        refused = run_cli(*command, *wrong_token)
        assert refused.returncode == 3 and refused.stderr.endswith(
            ": the admin token was refused: it is not the sidecar's FASTERDB_ADMIN_TOKEN (check --token or "
            "FASTERDB_ADMIN_TOKEN)\n"
        ), (command, refused.stderr)
    usage = run_cli("transfer", "--from", "x", "--to", "2", "--amount", "1", *base)
    assert usage.returncode == 3
    shown = run_cli("accounts", "show", "1", "--primary", *base, "-o", "json")
    assert json.loads(shown.stdout)["balance"] == "43.75"


def test_a_transfer_answers_within_its_budget_while_the_primary_is_frozen(
    sidecar_env: dict[str, str], pg: HotStandbyCluster, schema: str
) -> None:
    """One attempt used to hang for the statement timeout (30 s); now every try fits the budget."""
    budget = 2.0
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_SCHEMA=schema, FASTERDB_RETRY_BUDGET=str(budget))
    with SidecarProcess(env) as admin:
        assert httpx.post(admin.url + "/admin/migrate", headers=AUTH, timeout=30).status_code == 200
        seed(admin, {1: "100.00", 2: "0"})
        body = {"from_account": 1, "to_account": 2, "amount": "1.00", "idempotency_key": "during-freeze"}
        with faults.frozen(pg.primary):
            started = time.monotonic()
            response = post(admin, "/transfers", body)
            took = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        assert took < budget + 1.0, took  # the documented deadline: FASTERDB_RETRY_BUDGET
        again = wait_for(lambda: (r := post(admin, "/transfers", body)).status_code == 200 and r, 10)
        assert again.json()["duplicate"] is False  # nothing was applied during the freeze
        assert ledger_state(pg, schema) == (Decimal("100.00"), 1, Decimal("1.00"))
        assert "Traceback" not in admin.logs()


def test_accounts_seed_in_bulk(admin: SidecarProcess, pg: HotStandbyCluster, schema: str) -> None:
    base = ["--url", admin.url, "--token", TOKEN, "-o", "json"]
    started = time.monotonic()
    result = run_cli("accounts", "seed", "--count", "25000", "--balance", "10.00", "--start", "1000", *base)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"created": 25000, "existing": 0, "first_id": 1000, "last_id": 25999}
    assert time.monotonic() - started < 30  # three requests, not 25,000
    count, total = pg.sql(pg.primary, f"SELECT count(*) || '|' || sum(balance) FROM {schema}.accounts").split("|")
    assert (int(count), Decimal(total)) == (25000, Decimal("250000.00"))
    again = run_cli("accounts", "seed", "--count", "10", "--balance", "1", "--start", "25995", *base)
    assert json.loads(again.stdout) == {"created": 5, "existing": 5, "first_id": 25995, "last_id": 26004}
    too_many = post(admin, "/accounts/seed", {"start": 1, "count": 10001, "balance": "1"})
    assert too_many.status_code == 422
