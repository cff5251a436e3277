"""/metrics as Prometheus reads it: the content type, both exposition formats, promtool's lint.

Prometheus 3 refuses a scrape whose Content-Type has two charset parameters (Go's
mime.ParseMediaType); the old main sent exactly that. The header is pinned here, the text is
parsed with prometheus_client's own parsers, and linted with promtool (Debian's prometheus).
"""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.harness import SidecarProcess, wait_for

# What Prometheus 3.x sends when it scrapes (scrape_protocols default order).
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    # An empty label value is no label (Prometheus' reading): the sidecar's own pools have no app.
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if v))): s.value
        for family in parse_text(text)
        for s in family.samples
    }


def test_the_content_type_has_exactly_one_charset(sidecar: SidecarProcess) -> None:
    plain = httpx.get(sidecar.url + "/metrics", timeout=10)
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert plain.headers.get_list("content-type") == ["text/plain; version=0.0.4; charset=utf-8"]
    assert list(parse_text(plain.text))


def test_prometheus_3_gets_openmetrics(sidecar: SidecarProcess) -> None:
    response = httpx.get(sidecar.url + "/metrics", headers={"accept": PROMETHEUS_3_ACCEPT}, timeout=10)
    content_type = response.headers["content-type"]
    assert content_type.startswith("application/openmetrics-text; version=1.0.0") and content_type.count("charset") == 1
    assert response.text.endswith("# EOF\n")
    families = {f.name for f in parse_openmetrics(response.text)}
    assert {"fasterdb_db_up", "fasterdb_pool_acquire_wait_seconds", "fasterdb_transfers"} <= families


def test_promtool_accepts_the_scrape(sidecar: SidecarProcess) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run deploy/scripts/bootstrap.sh (Debian package prometheus)")
    text = httpx.get(sidecar.url + "/metrics", timeout=10).text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr.strip() == "", result


def test_counters_exist_from_the_start_and_replica_states_are_one_hot(sidecar: SidecarProcess) -> None:
    sidecar.get("/health/replicas")
    m = samples(sidecar.get("/metrics").text)
    outcomes = {dict(labels)["status"] for name, labels in m if name == "fasterdb_transfers_total"}
    assert {"applied", "duplicate", "insufficient_funds", "account_not_found", "idempotency_conflict"} <= outcomes
    states = {dict(labels)["state"]: value for (name, labels), value in m.items() if name == "fasterdb_replica_state"}
    assert set(states) >= {"streaming", "disconnected", "down", "split_brain"}
    assert sum(states.values()) == 1 and states["streaming"] == 1


def test_the_job_worker_is_not_counted_as_the_applications_acquires(sidecar_env: dict[str, str]) -> None:
    import uuid

    from tests.conformance.conftest import AUTH, TOKEN

    env = dict(
        sidecar_env,
        FASTERDB_ADMIN_TOKEN=TOKEN,
        FASTERDB_SCHEMA="conf_" + uuid.uuid4().hex[:8],
        FASTERDB_JOB_POLL_INTERVAL="0.1",
        FASTERDB_MONITOR_INTERVAL="0",
    )
    with SidecarProcess(env) as sidecar:
        assert httpx.post(sidecar.url + "/admin/migrate", headers=AUTH, timeout=30).status_code == 200
        key_app = ("fasterdb_pool_acquired_total", (("pool", "primary"), ("source", "sidecar")))
        key_jobs = ("fasterdb_pool_internal_acquired_total", (("pool", "primary"), ("purpose", "jobs")))
        first = samples(sidecar.get("/metrics").text)
        # The worker polls ten times a second: its acquires grow, the application's do not.
        wait_for(lambda: samples(sidecar.get("/metrics").text)[key_jobs] >= first[key_jobs] + 5, 10)
        assert samples(sidecar.get("/metrics").text)[key_app] == first[key_app]
