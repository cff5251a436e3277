"""The chart's probes, executed the way kubelet does, against a sidecar on the real primary/replica.

Takes path, port, period, timeout, failureThreshold and successThreshold from the rendered
Deployment; a probe succeeds on HTTP 200-399 within timeoutSeconds; readiness flips after
failureThreshold consecutive failures (back after successThreshold successes); liveness would
restart the container after failureThreshold consecutive failures.

The chart is rendered with probe periods of 1 s instead of the defaults (5 s, 10 s) so the run
takes seconds; every other probe field is the chart's own.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.hot_standby import HotStandbyCluster
from fasterdb_sidecar.drain import exit_bound
from tests.chart.conftest import find, render, scenario_values
from tests.harness import SidecarProcess, wait_for


@dataclass
class Prober:
    """One kubelet-style probe worker."""

    url: str
    probe: dict[str, Any]
    state: bool = False
    history: list[tuple[float, bool]] = field(default_factory=list)
    failures: int = 0
    successes: int = 0
    max_consecutive_failures: int = 0

    def tick(self) -> None:
        try:
            status = httpx.get(
                self.url + self.probe["httpGet"]["path"], timeout=self.probe["timeoutSeconds"]
            ).status_code
            ok = 200 <= status < 400
        except httpx.HTTPError:
            ok = False
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.probe.get("successThreshold", 1):
                self.state = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            self.max_consecutive_failures = max(self.max_consecutive_failures, self.failures)
            if self.failures >= self.probe["failureThreshold"]:
                self.state = False
        self.history.append((time.monotonic(), self.state))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.tick()
            stop.wait(max(0.0, self.probe["periodSeconds"] - (time.monotonic() - started)))


def wait_state(prober: Prober, want: bool, within: float) -> float:
    started = time.monotonic()
    wait_for(lambda: prober.state == want, within, 0.05, f"readiness {want}")
    return time.monotonic() - started


def test_rendered_probes_and_secret_files_against_a_real_sidecar(pg: HotStandbyCluster, tmp_path: Path) -> None:
    """The chart's container as rendered runs the sidecar: its env, its Secret as 0400 files, its probes."""
    values = {
        **scenario_values("default"),
        "database": {
            "primaryDsn": pg.dsn(),
            "replicaDsns": [f"{n.name}={pg.dsn(n)}" for n in pg.replica_nodes],
        },
        "adminToken": "probe-test-token-0123456789",
        "probes": {"readiness": {"periodSeconds": 1}, "liveness": {"periodSeconds": 1}},
        "lifecycle": {"drainMinSeconds": 1, "shutdownTimeoutSeconds": 1},
    }
    objects = render(values)
    container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    startup, readiness, liveness = container["startupProbe"], container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["port"] == container["ports"][0]["name"] == "fasterdb-http"
    # The Secret as the kubelet projects it: one 0400 file per key, under the mount path.
    mount = next(m for m in container["volumeMounts"] if m["name"] == "fasterdb-secrets")["mountPath"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key, value in find(objects, "Secret")["stringData"].items():
        (secrets / key).write_text(value)
        (secrets / key).chmod(0o400)
    env = {
        e["name"]: e["value"].replace(mount, str(secrets))
        for e in container["env"]
        if e["name"] not in ("FASTERDB_HOST", "FASTERDB_PORT")
    }
    assert not [e for e in container["env"] if "valueFrom" in e]
    with SidecarProcess(env) as sidecar:
        # Startup first, as kubelet runs it: passes within its own budget, then the others start.
        starter = Prober(sidecar.url, startup)
        for _ in range(startup["failureThreshold"]):
            starter.tick()
            if starter.state:
                break
            time.sleep(startup["periodSeconds"])
        assert starter.state, "the startup probe never passed"
        assert sidecar.get("/health/startup").json()["pools"] == {"primary": True, "replica-1": True}
        ready, live = Prober(sidecar.url, readiness), Prober(sidecar.url, liveness, state=True)
        stop = threading.Event()
        threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in (ready, live)]
        for t in threads:
            t.start()
        try:
            wait_state(ready, True, within=readiness["periodSeconds"] * 2)
            # The replica DSNs and the token came from their files too.
            replicas = sidecar.get("/health/db?replicas=true").json()["replicas"]
            assert [r["name"] for r in replicas] == ["replica-1"]
            token = {"Authorization": f"Bearer {values['adminToken']}"}
            assert httpx.get(sidecar.url + "/jobs", headers=token, timeout=5).status_code != 403
            pg.stop_node(pg.primary)
            # The first probe after the crash comes within one period, then failureThreshold in a row.
            limit = (readiness["failureThreshold"] + 1) * readiness["periodSeconds"] + readiness["timeoutSeconds"]
            took = wait_state(ready, False, within=limit)
            assert took <= limit
            pg.start_node(pg.primary)
            back = (readiness["successThreshold"] + 1) * readiness["periodSeconds"] + 5
            wait_state(ready, True, within=back)
            # SIGTERM: readiness fails on the next probes while liveness keeps passing (draining).
            assert sidecar.proc is not None
            # Liveness never failed, not even once: a database outage must not restart the pod.
            assert live.max_consecutive_failures == 0 and live.state is True
            sidecar.proc.send_signal(signal.SIGTERM)
            wait_state(ready, False, within=(readiness["failureThreshold"] + 1) * readiness["periodSeconds"] + 1)
            assert live.state is True
            assert sidecar.proc.wait(timeout=exit_bound(1, 1) + 3) == 0
        finally:
            stop.set()
            for t in threads:
                t.join()


def test_the_rendered_listen_address_answers_on_both_families_without_a_database(tmp_path: Path) -> None:
    """FASTERDB_HOST as the chart renders it: kubelet probes the pod IP (IPv4 or IPv6: IPv6-only and
    dual-stack clusters), the application beside it calls 127.0.0.1, the Service targets the number."""
    objects = render({**scenario_values("default"), "app": {"name": "app", "image": "shop:1"}})
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    container = next(c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "fasterdb-sidecar")
    host = next(e["value"] for e in container["env"] if e["name"] == "FASTERDB_HOST")
    (tmp_path / "primary-dsn").write_text("postgresql://app:pw@127.0.0.1:1/app")  # nothing listens there
    env = {"FASTERDB_HOST": host, "FASTERDB_PRIMARY_DSN_FILE": str(tmp_path / "primary-dsn")}
    with SidecarProcess(env) as sidecar:  # it waits for /health/live on 127.0.0.1
        assert find(objects, "Service")["spec"]["ports"][0]["targetPort"] == container["ports"][0]["containerPort"]
        for base in (f"http://127.0.0.1:{sidecar.port}", f"http://[::1]:{sidecar.port}"):
            for probe in (container["livenessProbe"], container["startupProbe"]):
                prober = Prober(base, probe)
                for _ in range(probe["failureThreshold"]):
                    prober.tick()
                    if prober.state:
                        break
                    time.sleep(probe["periodSeconds"])
                assert prober.state, (base, probe["httpGet"]["path"])
        # A second sidecar on the same port: one line and exit 1, as for any address.
        with pytest.raises(RuntimeError, match="cannot listen on"):
            SidecarProcess({**env, "FASTERDB_PORT": str(sidecar.port)}).start(wait=10)
