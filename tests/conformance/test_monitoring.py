"""The chart's alerts and dashboard, proven with promtool against the sidecar's real /metrics.

Every alert gets a firing and a silent ``promtool test rules`` case whose input series are made
from samples of a real scrape (metric name and labels as the sidecar emits them, plus the target
labels Prometheus adds), so a rule on a metric that does not exist cannot pass. Where the
condition can be created for real — replay paused, the primary stopped, the pool exhausted — the
whole scrape taken in that condition is fed to promtool and the alert must fire on it. Every
dashboard query is checked by promtool's parser and may name only metrics a real scrape has.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.chart.conftest import CHART, find, render
from tests.harness import SidecarProcess, example_app, wait_for

ALERTS = sorted(p.stem for p in (CHART / "alerts").glob("*.yaml"))
RELEASE, NAMESPACE = "my-db-sidecar", "apps"
JOB = f"{RELEASE}-fasterdb-sidecar"  # the Service's name: the job a ServiceMonitor gives
# What Prometheus (through a ServiceMonitor) adds to every sample of the target.
TARGET = {"namespace": NAMESPACE, "pod": f"{JOB}-7d9c-x2", "instance": "10.0.0.7:8080", "job": JOB}
SYNTHETIC = {"up"}  # series Prometheus makes itself; not in any scrape
TOKEN = "monitoring-token-0123456789"
Sample = tuple[str, dict[str, str], float]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run deploy/scripts/bootstrap.sh (Debian package prometheus)")
    return found


def scrape(sidecar: SidecarProcess) -> list[Sample]:
    """Every sample of one real scrape, as prometheus_client parses it."""
    text = sidecar.get("/metrics").text
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def rules(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chart's PrometheusRule, rendered by Helm's engine, as a Prometheus rule file."""
    chart_values = {"database": {"primaryDsn": "postgresql://a@h/d"}, "prometheusRule": {"enabled": True}}
    for key, value in (values or {}).items():
        chart_values[key] = value
    rule = find(render(chart_values, name=RELEASE, namespace=NAMESPACE), "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def rule_map(rule_file: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_file["groups"] for r in g["rules"]}


def promtool_run(tmp_path: Path, rule_file: dict[str, Any], tests: list[dict[str, Any]]) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_file, sort_keys=False))
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    result = subprocess.run(
        [promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def series_text(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def expected(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The alert promtool must report: the expression's `by` labels, the rule's labels, the annotations
    with their {{ $labels.x }} expanded (the only template the chart's alerts use)."""
    grouping = re.search(r"by \(([^)]*)\)", rule["expr"])
    assert grouping, f"{rule['alert']}: every alert aggregates with an explicit by (...)"
    keys = [k.strip() for k in grouping.group(1).split(",")]
    out = {k: labels[k] for k in keys}

    def expand(text: str) -> str:
        assert "{{" not in re.sub(r"\{\{ \$labels\.\w+ \}\}", "", text), f"{rule['alert']}: only $labels templates"
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: out.get(m.group(1), ""), text)

    return {
        "exp_labels": {**out, **rule["labels"]},
        "exp_annotations": {k: expand(v) for k, v in rule["annotations"].items()},
    }


# Per alert: the series (metric, labels to find the real sample by, firing values, silent values).
@dataclass(frozen=True)
class Case:
    series: list[tuple[str, dict[str, str], str, str]]
    minutes: int = 0  # extra minutes past `for` before evaluating
    extra: dict[str, str] = field(default_factory=dict)


MB = 1024 * 1024
CASES: dict[str, Case] = {
    "FasterdbPrimaryUnavailable": Case([("fasterdb_db_up", {"pool": "primary"}, "0x60", "1x60")]),
    "FasterdbReplicaLagBytesHigh": Case([("fasterdb_replica_lag_bytes", {}, f"{100 * MB}x60", f"{MB}x60")]),
    "FasterdbReplicaLagSecondsHigh": Case([("fasterdb_replica_lag_seconds", {}, "120x60", "2x60")]),
    "FasterdbReplicaNotStreaming": Case(
        [
            ("fasterdb_replica_state", {"state": "disconnected"}, "1x60", "0x60"),
            ("fasterdb_replica_state", {"state": "streaming"}, "0x60", "1x60"),
        ]
    ),
    "FasterdbReplicaSplitBrain": Case(
        [
            ("fasterdb_replica_state", {"state": "split_brain"}, "1x60", "0x60"),
            ("fasterdb_replica_state", {"state": "streaming"}, "0x60", "1x60"),
        ]
    ),
    "FasterdbPoolSaturated": Case([("fasterdb_pool_waiting", {"pool": "primary"}, "3x60", "0+1x2 0x57")]),
    "FasterdbPoolAcquireTimeouts": Case(
        [("fasterdb_pool_acquire_timeouts_total", {"pool": "primary"}, "0+2x60", "0+0x60")]
    ),
    "FasterdbJobThrottled": Case([("fasterdb_job_throttled", {"reason": "replica_lag"}, "1x60", "0x60")]),
    "FasterdbJobStuck": Case([("fasterdb_job_seconds_without_progress", {}, "0+120x60", "0+30x60")]),
    "FasterdbSidecarDown": Case([("up", {}, "0x60", "1x60")]),
    "FasterdbIdleInTransactionTooLong": Case([("fasterdb_pg_idle_in_transaction_max_seconds", {}, "600x60", "10x60")]),
    "FasterdbOldestTransactionTooOld": Case([("fasterdb_pg_oldest_xact_seconds", {}, "7200x60", "60x60")]),
    "FasterdbConnectionHeadroomLow": Case(
        [
            ("fasterdb_pg_connections_headroom", {}, "5x60", "200x60"),
            ("fasterdb_pg_connections_usable", {}, "297x60", "297x60"),
        ]
    ),
    "FasterdbInactiveSlotRetainingWal": Case(
        [
            ("fasterdb_pg_slot_retained_bytes", {}, f"{5 * 1024 * MB}x60", f"{5 * 1024 * MB}x60"),
            ("fasterdb_pg_slot_active", {}, "0x60", "1x60"),  # silent: the same WAL, but consumed
        ]
    ),
    "FasterdbXidWraparoundWarning": Case(
        [
            ("fasterdb_pg_xid_wraparound_ratio", {"database": "fasterdb"}, "0.6x60", "0.1x60"),
            ("fasterdb_pg_mxid_wraparound_ratio", {"database": "fasterdb"}, "0x60", "0x60"),
        ]
    ),
    "FasterdbXidWraparoundCritical": Case(
        [
            ("fasterdb_pg_xid_wraparound_ratio", {"database": "fasterdb"}, "0.1x60", "0.6x60"),
            ("fasterdb_pg_mxid_wraparound_ratio", {"database": "fasterdb"}, "0.8x60", "0.1x60"),
        ]
    ),
    "FasterdbDatabaseViewUnavailable": Case([("fasterdb_pg_view_up", {"view": "slots"}, "0x60", "1x60")]),
    "FasterdbReadsSpillingToPrimary": Case(
        [
            ("fasterdb_app_read_routes_total", {"reason": "lag"}, "0+40x60", "0+5x60"),
            ("fasterdb_app_read_routes_total", {"reason": "replica"}, "0+10x60", "0+45x60"),
        ]
    ),
}


@pytest.fixture(scope="module")
def real(sidecar_env: dict[str, str]) -> Iterator[list[Sample]]:
    """One real scrape of a sidecar with the database view and the example application reporting."""
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_SCHEMA="mon_" + str(int(time.time() * 1000)))
    with SidecarProcess(env) as sidecar, example_app(sidecar_env, sidecar=sidecar, name="shop"):
        yield wait_for(
            lambda: (
                (s := scrape(sidecar))
                and any(n.startswith("fasterdb_pg_slot_active") for n, _, _ in s)
                and any(n == "fasterdb_app_read_routes_total" for n, _, _ in s)
                and s
            ),
            what="a scrape with the database view and the application's figures",
        )


def find_sample(samples: list[Sample], name: str, match: dict[str, str]) -> dict[str, str]:
    for sample_name, labels, _ in samples:
        if sample_name == name and all(labels.get(k) == v for k, v in match.items()):
            return labels
    raise AssertionError(f"the sidecar emits no sample {name}{match}: an alert on it could never fire")


def test_the_rules_pass_promtool_check_and_every_alert_has_a_runbook_and_cases(tmp_path: Path) -> None:
    rule_file = rules()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_file, sort_keys=False))
    result = subprocess.run(
        [promtool(), "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout
    assert sorted(rule_map(rule_file)) == ALERTS == sorted(CASES)
    for name, rule in rule_map(rule_file).items():
        assert (CHART / "runbooks" / f"{name}.md").is_file()
        assert rule["annotations"]["runbook_url"].endswith(f"/runbooks/{name}.md")
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert f'namespace="{NAMESPACE}"' in rule["expr"] and not re.search(
            r"__[A-Z]+__", rule["expr"] + json.dumps(rule["annotations"])
        )


def test_every_alert_fires_and_stays_silent_on_series_from_a_real_scrape(real: list[Sample], tmp_path: Path) -> None:
    rule_file = rules()
    by_name = rule_map(rule_file)
    tests = []
    for alert, case in CASES.items():
        rule = by_name[alert]
        for firing in (True, False):
            input_series, first = [], None
            for name, match, fire, silent in case.series:
                labels = dict(match) if name in SYNTHETIC else find_sample(real, name, match)
                labels = {**labels, **TARGET}
                first = first or labels
                input_series.append({"series": series_text(name, labels), "values": fire if firing else silent})
            minutes = int(re.match(r"(\d+)m", rule["for"]).group(1)) + 10 + case.minutes  # type: ignore[union-attr]
            assert first is not None
            tests.append(
                {
                    "name": f"{alert} {'fires' if firing else 'stays silent'}",
                    "interval": "1m",
                    "input_series": input_series,
                    "alert_rule_test": [
                        {
                            "eval_time": f"{minutes}m",
                            "alertname": alert,
                            "exp_alerts": [expected(rule, first)] if firing else [],
                        }
                    ],
                }
            )
    promtool_run(tmp_path, rule_file, tests)


def test_overrides_and_disabled_alerts(tmp_path: Path) -> None:
    rule_file = rules(
        {
            "prometheusRule": {
                "enabled": True,
                "disabled": ["FasterdbJobThrottled"],
                "ruleLabels": {"team": "payments"},
                "rules": {
                    "FasterdbReplicaLagBytesHigh": {"threshold": 268435456, "for": "10m", "severity": "critical"}
                },
            }
        }
    )
    by_name = rule_map(rule_file)
    assert "FasterdbJobThrottled" not in by_name
    lag = by_name["FasterdbReplicaLagBytesHigh"]
    assert lag["expr"].endswith("> 268435456") and lag["for"] == "10m"
    assert lag["labels"] == {"severity": "critical", "team": "payments"}
    assert "256 MiB" in lag["annotations"]["summary"] and "10m" in lag["annotations"]["description"]
    import helm_python as helm

    with pytest.raises(helm.HelmError, match="FasterdbTypo"):
        rules({"prometheusRule": {"enabled": True, "rules": {"FasterdbTypo": {"threshold": 1}}}})
    # Not rendered by default where the cluster serves no PrometheusRule (Helm's engine offline).
    assert not [o for o in render({"database": {"primaryDsn": "postgresql://a@h/d"}}) if o["kind"] == "PrometheusRule"]


def fires_on_the_scrape(
    tmp_path: Path,
    samples: list[Sample],
    alert: str,
    about: tuple[str, dict[str, str]],
    values: dict[str, Any] | None = None,
    *,
    growing: bool = False,
) -> None:
    """Feed a whole real scrape (held for an hour) to promtool: ``alert`` must fire, about the sample
    named by ``about`` (metric name, labels). ``growing``: counters (``_total``) go on growing at
    the rate the scrape shows (each minute by its value), for alerts on rates."""
    rule_file = rules(values)
    rule = rule_map(rule_file)[alert]

    def values_of(name: str, value: float) -> str:
        if growing and name.endswith("_total"):
            return f"{number(value)}+{number(value)}x60"
        return f"{number(value)}x60"

    series = [
        {"series": series_text(name, {**labels, **TARGET}), "values": values_of(name, value)}
        for name, labels, value in samples
        if not name.endswith("_created")
    ]
    metric, match = about
    labels = {**find_sample(samples, metric, match), **TARGET}
    minutes = int(rule["for"].rstrip("m")) + 5
    test = {
        "name": f"{alert} on a real scrape",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": f"{minutes}m", "alertname": alert, "exp_alerts": [expected(rule, labels)]}],
    }
    promtool_run(tmp_path, rule_file, [test])


def test_real_conditions_fire_their_alerts(sidecar_env: dict[str, str], pg: HotStandbyCluster, tmp_path: Path) -> None:
    replica = pg.replica_nodes[0]
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_POOL_MAX_SIZE="2", FASTERDB_RETRY_BUDGET="30")
    env["FASTERDB_SCHEMA"] = "mon_pool_" + str(int(time.time() * 1000))
    # A scrape reads what the background refresher measured last: every 0.5 s here, not the default
    # 5 s, which the two waits for a condition to show in the scrape spent most of the test on.
    env["FASTERDB_MONITOR_INTERVAL"] = "0.5"
    with SidecarProcess(env) as sidecar:
        # Replay paused on the replica, WAL written: lag in bytes, and not streaming.
        faults.pause_replay(pg, replica)
        try:
            faults.write_wal(pg, 3)
            paused = wait_for(
                lambda: (
                    (s := scrape(sidecar))
                    and any(
                        n == "fasterdb_replica_state" and lb.get("state") == "replay_paused" and v for n, lb, v in s
                    )
                    and s
                ),
                what="replay_paused in the scrape",
            )
        finally:
            faults.resume_replay(pg, replica)
        small = {"prometheusRule": {"enabled": True, "rules": {"FasterdbReplicaLagBytesHigh": {"threshold": 1048576}}}}
        fires_on_the_scrape(tmp_path, paused, "FasterdbReplicaLagBytesHigh", ("fasterdb_replica_lag_bytes", {}), small)
        replay_paused = ("fasterdb_replica_state", {"state": "replay_paused"})
        fires_on_the_scrape(tmp_path, paused, "FasterdbReplicaNotStreaming", replay_paused)

        # The pool exhausted: four transfers wait on a row lock, the pool has two connections.
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(sidecar.url + "/admin/migrate", headers=auth, timeout=30).status_code == 200
        for account in (1, 2):
            httpx.post(sidecar.url + "/accounts", json={"id": account, "balance": "100"}, headers=auth, timeout=10)
        schema = env["FASTERDB_SCHEMA"]
        with faults.row_locked(pg, f"{schema}.accounts", 1):

            def transfer(n: int) -> None:
                body = {"from_account": 1, "to_account": 2, "amount": "1.00", "idempotency_key": f"mon-{n}"}
                httpx.post(sidecar.url + "/transfers", json=body, headers=auth, timeout=60)

            threads = [threading.Thread(target=transfer, args=(n,), daemon=True) for n in range(4)]
            for thread in threads:
                thread.start()
            saturated = wait_for(
                lambda: (
                    (s := scrape(sidecar))
                    and any(n == "fasterdb_pool_waiting" and lb.get("pool") == "primary" and v >= 1 for n, lb, v in s)
                    and s
                ),
                30,
                what="tasks waiting for a primary connection",
            )
        for thread in threads:
            thread.join(timeout=60)
        fires_on_the_scrape(
            tmp_path, saturated, "FasterdbPoolSaturated", ("fasterdb_pool_waiting", {"pool": "primary"})
        )

        # The primary stopped: no sidecar can use it.
        pg.stop_node(pg.primary)
        down = wait_for(
            lambda: (
                (s := scrape(sidecar))
                and any(n == "fasterdb_db_up" and lb.get("pool") == "primary" and v == 0 for n, lb, v in s)
                and s
            ),
            what="the primary down in the scrape",
        )
    fires_on_the_scrape(tmp_path, down, "FasterdbPrimaryUnavailable", ("fasterdb_db_up", {"pool": "primary"}))


def test_reads_spilling_onto_the_primary_fire_their_alert(
    sidecar_env: dict[str, str], pg: HotStandbyCluster, tmp_path: Path
) -> None:
    replica = pg.replica_nodes[0]
    app_env = {**sidecar_env, "FASTERDB_READ_MAX_LAG_SECONDS": "0.5"}
    with SidecarProcess(sidecar_env) as sidecar, example_app(app_env, sidecar=sidecar, name="shop") as app:
        wait_for(lambda: httpx.post(app.url + "/items", json={"name": "x"}).status_code == 201, 20, what="the app")
        item = httpx.post(app.url + "/items", json={"name": "y"}).json()["id"]
        faults.pause_replay(pg, replica)
        try:
            wait_for(
                lambda: (
                    (faults.write_wal(pg, 0.1) or True)
                    and app.get(f"/items/{item}").headers.get("fasterdb-served-by") != "replica-1"
                ),
                20,
                0.1,
                "reads leaving the paused replica",
            )
            with httpx.Client(timeout=10) as client:
                for _ in range(60):  # reads while no replica is within their budget: spilled or refused
                    client.get(f"{app.url}/items/{item}")
            spilling = wait_for(
                lambda: (
                    (s := scrape(sidecar))
                    and sum(
                        v
                        for n, lb, v in s
                        if n == "fasterdb_app_read_routes_total" and lb.get("reason") in ("lag", "rejected")
                    )
                    >= 60
                    and s
                ),
                what="the spills in the scrape",
            )
        finally:
            faults.resume_replay(pg, replica)
    about = ("fasterdb_app_read_routes_total", {"app": "shop", "reason": "lag"})
    fires_on_the_scrape(tmp_path, spilling, "FasterdbReadsSpillingToPrimary", about, growing=True)


# -- the dashboard ---------------------------------------------------------------------------------

DASHBOARD = CHART / "dashboards" / "fasterdb-sidecar.json"


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"{panel['id']}{target['refId']}", target["expr"]))
    return found


def test_every_dashboard_query_parses_and_names_only_scraped_metrics(real: list[Sample], tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = panel_queries(dashboard)
    assert len(queries) >= 25
    # Templating works without edits: every query follows $namespace and $pod, through ${datasource}.
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "pod"):
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
    for _, expr in queries:
        assert 'namespace=~"$namespace"' in expr and 'pod=~"$pod"' in expr, expr
    # Syntax: each query (variables filled in as Grafana does) as a recording rule for promtool.
    concrete = {"$namespace": NAMESPACE, "$pod": ".*", "$__rate_interval": "2m"}
    records = []
    for ref, expr in queries:
        for variable, value in concrete.items():
            expr = expr.replace(variable, value)
        records.append({"record": f"fasterdb:dashboard_panel_{ref.lower()}", "expr": expr})
    for variable in ("namespace", "pod"):
        query = variables[variable]["definition"].replace("$namespace", NAMESPACE)
        records.append(
            {
                "record": f"fasterdb:dashboard_variable_{variable}",
                "expr": re.sub(r"label_values\((.*), \w+\)", r"\1", query),
            }
        )
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(tmp_path / "dashboard.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Names: only what the sidecar emits (and Prometheus' own `up`).
    scraped = {name for name, _, _ in real} | SYNTHETIC
    named = {m for _, expr in queries for m in re.findall(r"\b(fasterdb_\w+|up)\b(?=\s*[{\[])", expr)}
    assert named and named <= scraped, sorted(named - scraped)
    # The variables' own queries too.
    for variable in ("namespace", "pod"):
        assert re.search(r"label_values\((fasterdb_\w+)", variables[variable]["definition"]).group(1) in scraped  # type: ignore[union-attr]


def test_the_chart_ships_the_dashboard_and_the_monitors() -> None:
    values = {
        "database": {"primaryDsn": "postgresql://a@h/d"},
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Databases"}},
        "serviceMonitor": {
            "enabled": True,
            "scrapeTimeout": "10s",
            "relabelings": [{"action": "replace", "targetLabel": "cluster", "replacement": "prod"}],
            "metricRelabelings": [
                {"action": "drop", "regex": "fasterdb_pool_internal_.*", "sourceLabels": ["__name__"]}
            ],
            "fallbackScrapeProtocol": "PrometheusText0.0.4",
        },
        "podMonitor": {"enabled": True, "selector": {"app.kubernetes.io/name": "shop"}, "scrapeTimeout": "5s"},
        "prometheusRule": {"enabled": True, "additionalLabels": {"release": "prometheus"}},
    }
    objects = render(values, name=RELEASE, namespace=NAMESPACE)
    config = find(objects, "ConfigMap", name_suffix="-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"] == {"grafana_folder": "Databases"}
    assert json.loads(config["data"]["fasterdb-sidecar.json"]) == json.loads(DASHBOARD.read_text())
    monitor = find(objects, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scrapeTimeout"] == "10s" and endpoint["relabelings"][0]["targetLabel"] == "cluster"
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    assert monitor["spec"]["fallbackScrapeProtocol"] == "PrometheusText0.0.4"
    pods = find(objects, "PodMonitor")
    assert pods["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "shop"}
    assert pods["spec"]["podMetricsEndpoints"][0]["port"] == "fasterdb-http"
    assert find(objects, "PrometheusRule")["metadata"]["labels"]["release"] == "prometheus"


def test_the_readme_lists_every_alert() -> None:
    readme = (CHART.parents[1] / "README.md").read_text()
    table = readme.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    assert sorted(re.findall(r"^\| `(Fasterdb\w+)` \|", table, flags=re.MULTILINE)) == ALERTS
