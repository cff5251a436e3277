"""The kit's pure parts: settings, read-after tokens, read routing (hysteresis, spill cap), labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from fasterdb.env import parse_replica_dsns
from fasterdb.pools.transactions import begin_statement, quote_label
from fasterdb.read_after import TOKEN_SECONDS, ReadAfter
from fasterdb.routing import HOLD_DOWN_SECONDS, PRIMARY, Budget, Router
from fasterdb.settings import ConfigError, KitSettings
from fasterdb.sidecar import ReplicaView, View
from fasterdb.web import Templates

DSN = "postgresql://app:secret@db:5432/app"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults_and_secret_files(tmp_path: Path) -> None:
    s = KitSettings.from_env({"FASTERDB_PRIMARY_DSN": DSN})
    assert (s.app_name, s.sidecar_url, s.read_max_lag_seconds, s.read_max_lag_bytes) == (
        "app",
        "http://127.0.0.1:8080",
        2.0,
        16 * 1024**2,
    )
    (tmp_path / "replicas").write_text(f"east={DSN}\nwest=postgresql://app:pw@h1,h2/app?target_session_attrs=standby\n")
    (tmp_path / "key").write_text("k" * 32 + "\n")
    s = KitSettings.from_env(
        {
            "FASTERDB_PRIMARY_DSN": DSN,
            "FASTERDB_REPLICA_DSNS_FILE": str(tmp_path / "replicas"),
            "FASTERDB_READ_AFTER_KEY_FILE": str(tmp_path / "key"),
            "FASTERDB_SIDECAR_URL": "",
        }
    )
    assert [name for name, _ in s.replica_dsns] == ["east", "west"]
    assert s.replica_dsns[1][1].endswith("@h1,h2/app?target_session_attrs=standby")
    assert s.read_after_key == b"k" * 32 and s.sidecar_url is None
    assert "secret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "FASTERDB_PRIMARY_DSN: required"),
        ({"FASTERDB_PRIMARY_DSN": "mysql://x"}, "FASTERDB_PRIMARY_DSN: not a postgresql"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_ACQUIRE_TIMEOUT": "0"}, "FASTERDB_ACQUIRE_TIMEOUT"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_READ_MAX_LAG_BYTES": "lots"}, "invalid size"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_READ_AFTER_KEY": "short"}, "too short"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_SIDECAR_URL": "https://x"}, "FASTERDB_SIDECAR_URL"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_READ_SPILL_POLICY": "maybe"}, "reject or stale"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_POOL_MIN_SIZE": "5", "FASTERDB_POOL_MAX_SIZE": "2"}, "larger"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_PRIMARY_DSN_FILE": "/x"}, "not both"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_REPLICA_DSNS": f"primary={DSN}"}, "not allowed"),
    ],
)
def test_bad_settings_are_one_line_without_the_secret(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        KitSettings.from_env(env)
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)


def test_replica_lists_keep_multi_host_dsns_whole() -> None:
    text = "a=postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=prefer-standby,postgresql://u:p@h3/db"
    assert parse_replica_dsns(text) == [
        ("a", "postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=prefer-standby"),
        ("replica-2", "postgresql://u:p@h3/db"),
    ]


# -- read-after tokens ------------------------------------------------------------------------


def test_tokens_verify_only_with_the_shared_key_and_before_they_expire() -> None:
    pod_a, pod_b, other = ReadAfter(b"k" * 32), ReadAfter(b"k" * 32), ReadAfter(b"x" * 32)
    token = pod_a.issue(0x3005EA8, now=100.0)
    assert pod_b.verify(token, now=101.0) == 0x3005EA8  # another pod of the same application
    assert other.verify(token, now=101.0) is None  # another key: forged as far as it knows
    assert pod_b.verify(token, now=100.0 + TOKEN_SECONDS + 1) is None  # expired
    version, position, expires, mac = token.split(".")
    for forged in (
        f"{version}.{int(position, 16) + 1:x}.{expires}.{mac}",  # a later position, same mac
        f"{version}.{position}.{int(expires) + 999}.{mac}",  # a longer life
        f"v2.{position}.{expires}.{mac}",
        "garbage",
        "",
        None,
        "v1." + "a" * 500,
    ):
        assert pod_b.verify(forged, now=101.0) is None


def test_without_a_key_tokens_hold_within_the_process_only() -> None:
    one, two = ReadAfter(None), ReadAfter(None)
    assert not one.shared and one.verify(one.issue(5)) == 5 and two.verify(one.issue(5)) is None


# -- routing ----------------------------------------------------------------------------------


def view(clock: Clock, **replicas: tuple[float, int, int] | None) -> View:
    """A sidecar view: name=(lag seconds, lag bytes, replay position) or None (down)."""
    return View(
        replicas={
            name: ReplicaView(name, "streaming", r[1], r[0], r[2])
            if r is not None
            else ReplicaView(name, "down", None, None, None)
            for name, r in replicas.items()
        },
        primary_error=None,
        fetched_at=clock(),
    )


def router(clock: Clock, names: tuple[str, ...] = ("east", "west"), **kw: object) -> Router:
    options: dict[str, object] = {"spill_max_share": 0.5, "policy": "reject", "knowledge_max_age": 5.0} | kw
    return Router(list(names), Budget(2.0, 16 * 1024**2), clock=clock, **options)  # type: ignore[arg-type]


def test_reads_go_to_fresh_replicas_in_turn() -> None:
    clock = Clock()
    r = router(clock)
    r.observe(view(clock, east=(0.1, 100, 10), west=(0.2, 100, 10)))
    assert {r.choose().target for _ in range(4)} == {"east", "west"}


def test_the_turn_goes_on_across_views() -> None:
    """An application reading less often than views arrive still spreads its reads: a new view
    with the same replicas in rotation does not start the turn again at the first of them."""
    clock = Clock()
    r = router(clock)
    seen = []
    for _ in range(6):
        r.observe(view(clock, east=(0.1, 100, 10), west=(0.2, 100, 10)))
        seen.append(r.choose().target)
    assert seen.count("east") == seen.count("west") == 3


def test_a_lagging_replica_leaves_at_once_and_returns_only_after_the_hold_down() -> None:
    clock = Clock()
    r = router(clock, names=("east",), spill_max_share=1.0)
    r.observe(view(clock, east=(0.1, 0, 1)))
    assert r.choose().target == "east"
    clock.now += 1
    r.observe(view(clock, east=(3.0, 0, 1)))  # over the 2 s budget: out now
    assert r.choose().target == PRIMARY
    clock.now += 1
    r.observe(view(clock, east=(1.5, 0, 1)))  # within the budget but not well within (enter: 1 s)
    assert r.choose().target == PRIMARY
    for _ in range(int(HOLD_DOWN_SECONDS / 0.5)):
        clock.now += 0.5
        r.observe(view(clock, east=(0.2, 0, 1)))
        if clock.now - 1002.5 < HOLD_DOWN_SECONDS:
            assert r.choose().target == PRIMARY  # held down
    clock.now += 0.5
    r.observe(view(clock, east=(0.2, 0, 1)))
    assert r.choose().target == "east"


def test_the_view_age_counts_as_lag() -> None:
    clock = Clock()
    r = router(clock, names=("east",), spill_max_share=1.0)
    r.observe(view(clock, east=(0.5, 0, 1)))
    assert r.choose().target == "east"
    clock.now += 2  # no new view for 2 s: 0.5 + 2 > 2
    r.observe(r.view)  # type: ignore[arg-type]
    assert r.choose().target == PRIMARY


def test_spills_are_capped_then_rejected_or_served_stale() -> None:
    clock = Clock()
    for policy, past_cap in (("reject", ("", "rejected")), ("stale", ("west", "stale"))):
        r = router(clock, policy=policy, spill_max_share=0.25)
        r.observe(view(clock, east=(30.0, 0, 1), west=(10.0, 0, 1)))
        choices = [(c.target, c.reason) for c in (r.choose() for _ in range(100))]
        spilled = choices.count((PRIMARY, "lag"))
        assert 20 <= spilled <= 25 and choices.count(past_cap) == 100 - spilled


def test_reads_on_the_fast_path_count_in_the_spill_window_and_the_counts() -> None:
    clock = Clock()
    r = router(clock, names=("east",), spill_max_share=0.25)
    r.observe(view(clock, east=(0.1, 0, 1)))
    assert [r.choose().target for _ in range(300)] == ["east"] * 300  # the fast path: one increment each
    assert r.counts["route:replica"] == 300
    clock.now += 1
    r.observe(view(clock, east=(30.0, 0, 1)))  # out of rotation: from now on reads spill, capped
    choices = [r.choose().reason for _ in range(200)]
    # 25 % of the window's 500 reads (the 300 fast ones included) may spill; without them, 10 would
    assert choices.count("lag") == 125 and choices.count("rejected") == 75
    assert r.counts["route:replica"] == 300 and r.counts["route:lag"] == 125


def test_when_no_replica_can_serve_reads_go_to_the_primary_uncapped() -> None:
    clock = Clock()
    r = router(clock, spill_max_share=0.0)
    r.observe(view(clock, east=None, west=None))  # both down (or promoted): no cap, no 503
    assert {(c.target, c.reason) for c in (r.choose() for _ in range(50))} == {(PRIMARY, "down")}


def test_without_a_fresh_view_reads_go_to_the_primary_uncapped() -> None:
    clock = Clock()
    r = router(clock, spill_max_share=0.0)
    assert [r.choose().reason for _ in range(3)] == ["unknown"] * 3  # no view yet
    r.observe(view(clock, east=(0.1, 0, 1), west=None))
    clock.now += 6  # older than knowledge_max_age
    assert r.choose().reason == "unknown" and r.counts["route:unknown"] == 4


def test_read_after_positions_pick_a_replica_that_has_them_or_one_to_wait_on() -> None:
    clock = Clock()
    r = router(clock)
    r.observe(view(clock, east=(0.1, 0, 500), west=(0.1, 0, 900)))
    assert r.choose(position=800).target == "west"
    waiting = r.choose(position=1000)
    assert (waiting.target, waiting.reason, waiting.wait_on) == (PRIMARY, "read_after", "west")
    r.observe(view(clock, east=None, west=None))
    assert (r.choose(position=10).target, r.choose(position=10).wait_on) == (PRIMARY, None)


def test_a_route_with_its_own_budget_has_its_own_rotation() -> None:
    clock = Clock()
    r = router(clock, names=("east",), spill_max_share=1.0)
    r.observe(view(clock, east=(5.0, 0, 1)))
    assert r.choose().target == PRIMARY
    assert r.choose(Budget(60.0, 1024**3)).target == "east"  # a report may read 60 s old data


# -- labels and templates ---------------------------------------------------------------------


def test_labels_are_safe_literals_sent_with_begin() -> None:
    assert quote_label("shop@pod-1 GET /items/{id}") == "'shop@pod-1 GET /items/{id}'"
    assert quote_label("x'; DROP TABLE t; --") == "'x''; DROP TABLE t; --'"
    assert quote_label("é\x00" + "a" * 100) == "'??" + "a" * 61 + "'"
    assert begin_statement("serializable", True, "l") == (
        "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY; SET LOCAL application_name = 'l'"
    )
    assert begin_statement("read_committed", False, None) == "BEGIN ISOLATION LEVEL READ COMMITTED"


def test_requests_are_named_by_their_route_template() -> None:
    t = Templates(
        [
            {"method": "GET", "path": "/items/{item_id}"},
            {"method": "GET", "path": "/items/search"},
            {"method": "POST", "path": "/items"},
        ]
    )
    assert t.match("GET", "/items/42") == "GET /items/{item_id}"
    assert t.match("GET", "/items/search") == "GET /items/search"  # a literal wins
    assert t.match("POST", "/items") == "POST /items" and t.match("DELETE", "/items") is None


def test_while_the_primary_is_down_a_replica_keeps_its_last_measured_lag() -> None:
    clock = Clock()
    r = router(clock, names=("east",))
    r.observe(view(clock, east=(0.3, 10, 1)))
    clock.now += 30  # long past the budget if the lag were still growing
    down = View(
        replicas={"east": ReplicaView("east", "disconnected", None, None, 1)},
        primary_error="connection refused",
        fetched_at=clock(),
    )
    r.observe(down)
    assert r.choose().target == "east"  # no commits to fall behind on: 0.3 s it was, 0.3 s it is
    unknown = View(replicas=down.replicas, primary_error=None, fetched_at=clock())
    r.observe(unknown)  # the primary answers but the lag is unknown: not served
    assert r.choose().target == PRIMARY
