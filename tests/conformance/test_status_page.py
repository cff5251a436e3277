"""The status page and Swagger UI in a real browser: headless Chromium (Debian's), driven by Playwright.

One sidecar on the session's primary + streaming replica and one browser for the module. The
page must show a replica's paused replay within 2 s of ``pg_wal_replay_pause()`` and its recovery
after resume; render and stream under the API server's pod-proxy path prefix (relative URLs only);
show the states without JavaScript; and /docs/ must render Swagger UI without listing its own files.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.browser import POD_PROXY, PrefixProxy, chromium
from tests.harness import SidecarProcess, wait_for

REPLICA = '.replica[data-name="replica-1"]'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors  # a CSP violation or a script error shows up here


def _live(page: Any) -> None:
    page.wait_for_selector('#live[data-state="live"]', timeout=10_000)


def _replica_state(sidecar: SidecarProcess) -> str:
    return str(sidecar.get("/health/replicas?max_lag_bytes=1TB").json()["replicas"][0]["state"])


def test_paused_replay_shows_within_two_seconds_and_recovery_after_resume(
    page: Any, sidecar: SidecarProcess, pg: HotStandbyCluster
) -> None:
    replica = pg.replica_nodes[0]
    wait_for(lambda: _replica_state(sidecar) == "streaming", what="replica streaming")
    page.goto(sidecar.url + "/")
    _live(page)
    page.wait_for_selector(f'{REPLICA}[data-state="streaming"]', timeout=5_000)

    faults.pause_replay(pg, replica)
    paused_at = time.monotonic()
    page.wait_for_selector(f'{REPLICA}[data-state="replay_paused"]', timeout=2_000)
    seen_after = time.monotonic() - paused_at
    assert seen_after < 2.0, seen_after
    assert "replay_paused" in page.inner_text(REPLICA)
    assert "replica-1: replay_paused" in page.inner_text("#overall")

    faults.write_wal(pg, 1)  # behind now, by bytes the page must show
    behind = re.compile(r"behind \(replay\)\s+1\.[0-9] MB")
    wait_for(lambda: behind.search(page.inner_text(REPLICA)), what="1 MB behind, on the page")

    faults.resume_replay(pg, replica)
    page.wait_for_selector(f'{REPLICA}[data-state="streaming"]', timeout=10_000)
    page.wait_for_selector('#overall[data-overall="ok"]', timeout=5_000)
    assert "0 B" in page.inner_text(REPLICA)
    assert page.locator(f"{REPLICA} svg.spark polyline").count() >= 2  # the history drawn


def test_the_page_and_its_stream_work_under_the_pod_proxy_prefix(page: Any, sidecar: SidecarProcess) -> None:
    with PrefixProxy(sidecar.port) as proxy:
        page.goto(proxy.url)
        _live(page)  # the EventSource reached the sidecar through the prefix
        page.wait_for_selector(REPLICA, timeout=5_000)
        assert f"{POD_PROXY}/status/stream" in proxy.seen
        assert all(target.startswith(POD_PROXY + "/") for target in proxy.seen), proxy.seen

        page.click("text=API docs")  # a relative link: to <prefix>/docs, Swagger UI from the sidecar
        page.wait_for_selector(".swagger-ui .opblock", timeout=10_000)
        assert page.url == proxy.url + "docs"
        assert f"{POD_PROXY}/openapi.json" in proxy.seen
        assert all(target.startswith(POD_PROXY + "/") for target in proxy.seen), proxy.seen


def test_without_javascript_the_snapshot_shows_the_states(
    browser: Any, sidecar: SidecarProcess, pg: HotStandbyCluster
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        faults.pause_replay(pg, pg.replica_nodes[0])
        wait_for(lambda: _replica_state(sidecar) == "replay_paused", what="replay_paused measured")
        page.goto(sidecar.url + "/")
        assert page.get_attribute(REPLICA, "data-state") == "replay_paused"
        assert "replay_paused" in page.inner_text(REPLICA)
        assert page.get_attribute("#primary", "data-ok") == "true" and "ok" in page.inner_text("#primary")
        assert "primary" in page.inner_text("#pools") and "replica-1" in page.inner_text("#pools")
        assert re.search(r"headroom\s+\d+", page.inner_text("#database"))
        live = page.inner_text("#live")
        assert live.startswith("Snapshot of") and "JavaScript is off" in live
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
def test_swagger_ui_renders_and_lists_only_api_operations(page: Any, sidecar: SidecarProcess, path: str) -> None:
    page.goto(sidecar.url + path)
    page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=10_000)
    paths = {text.strip().replace("\u200b", "") for text in page.locator(".opblock-summary-path").all_inner_texts()}
    assert {"/health/db", "/pools", "/", "/status/stream", "/docs"} <= paths, paths
    assert not [p for p in paths if p.startswith("/docs/")], paths
