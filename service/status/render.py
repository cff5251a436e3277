"""The status page's live part as HTML: one renderer for the first snapshot and every streamed update.

Every value is escaped; nothing here loads anything. Sparklines are inline SVG drawn from the
lag history. Elements carry ``data-*`` attributes (state, ok) so that tests and scripts read the
same thing a person sees.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from html import escape
from typing import Any

from fasterdb.sizes import format_size

from .history import Sample
from .view import DatabaseView, JobsView, PrimaryView, ReplicaView, StatusView

SPARK_W, SPARK_H = 120, 28
# States a person should look at; the badge colours follow the word, never replace it.
GOOD_STATES = {"streaming"}
WARN_STATES = {"catching_up", "replay_paused"}


def esc(value: object) -> str:
    """Text for HTML (quotes included, so it is safe in attributes too)."""
    return escape(str(value), quote=True)


def clock(at: float) -> str:
    """'2026-11-29 22:25:25 UTC' (the CLI's time format)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def duration(seconds: float | None) -> str:
    """'0 s', '4.2 s', '3 min 20 s', '2 h 5 min'; '-' when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if 0 < seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _badge(text: str, tone: str) -> str:
    return f'<span class="badge {tone}">{esc(text)}</span>'


def sparkline(samples: list[Sample], pick: str, threshold: float, now: float, window: float, label: str) -> str:
    """An SVG line of one lag measure over the window (gaps where it was unknown), the threshold dashed."""
    values = [(s.at, getattr(s, pick)) for s in samples if s.at >= now - window]
    known = [v for _, v in values if v is not None]
    top = max([*known, threshold, 1e-9])
    segments: list[list[str]] = [[]]
    for at, value in values:
        if value is None:
            segments.append([])
            continue
        x = SPARK_W * (1 - (now - at) / window)
        y = SPARK_H - 1 - (SPARK_H - 2) * (value / top)
        segments[-1].append(f"{x:.1f},{y:.1f}")
    lines = "".join(f'<polyline points="{" ".join(seg)}"/>' for seg in segments if seg)
    y_limit = SPARK_H - 1 - (SPARK_H - 2) * (threshold / top)
    peak = max(known, default=None)
    shown = format_size(int(peak)) if pick == "lag_bytes" and peak is not None else duration(peak)
    title = f"{label}, last {int(window // 60)} min: peak {shown if peak is not None else 'unknown'}"
    return (
        f'<svg class="spark" viewBox="0 0 {SPARK_W} {SPARK_H}" preserveAspectRatio="none" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
        f'<line class="limit" x1="0" x2="{SPARK_W}" y1="{y_limit:.1f}" y2="{y_limit:.1f}"/>{lines}</svg>'
    )


def _primary(p: PrimaryView) -> str:
    state = _badge("ok", "good") if p.ok else _badge(p.error or "unavailable", "bad")
    latency = f"{p.latency_ms:.1f} ms" if p.latency_ms is not None else "-"
    return (
        f'<section class="card" id="primary" data-ok="{str(p.ok).lower()}"><h2>Primary</h2>'
        f'<p class="state">{state}</p><dl><dt>health check</dt><dd>{esc(latency)}</dd></dl></section>'
    )


def _replica(r: ReplicaView, view: StatusView) -> str:
    tone = "good" if r.ok else "warn" if r.state in WARN_STATES and r.error is None else "bad"
    window = 300.0
    bytes_line = sparkline(r.history, "lag_bytes", view.thresholds.max_lag_bytes, view.at, window, "lag in bytes")
    secs_line = sparkline(r.history, "lag_seconds", view.thresholds.max_lag_seconds, view.at, window, "lag in seconds")
    error = f'<p class="why">{esc(r.error)}</p>' if r.error else ""
    return (
        f'<article class="card replica" data-name="{esc(r.name)}" data-state="{esc(r.state)}" '
        f'data-ok="{str(r.ok).lower()}"><h3>{esc(r.name)} {_badge(r.state, tone)}</h3>{error}<dl>'
        f"<dt>behind (replay)</dt><dd>{esc(format_size(r.lag_bytes))}</dd>"
        f"<dt>behind (received)</dt><dd>{esc(format_size(r.receive_lag_bytes))}</dd>"
        f"<dt>for</dt><dd>{esc(duration(r.lag_seconds))}</dd></dl>"
        f'<div class="sparks"><figure>{bytes_line}<figcaption>bytes, 5 min</figcaption></figure>'
        f"<figure>{secs_line}<figcaption>seconds, 5 min</figcaption></figure></div></article>"
    )


def _replicas(view: StatusView) -> str:
    t = view.thresholds
    limits = f"ok within {format_size(t.max_lag_bytes)} and {duration(t.max_lag_seconds)} (dashed line)"
    if not view.replicas:
        body = '<p class="muted">No replica is configured (FASTERDB_REPLICA_DSNS).</p>'
    else:
        body = '<div class="grid">' + "".join(_replica(r, view) for r in view.replicas) + "</div>"
    return f'<section id="replicas"><h2>Replicas <small>{esc(limits)}</small></h2>{body}</section>'


POOL_COLUMNS = ("pool", "role", "ready", "in use", "idle", "size / max", "waiting", "wait p99", "timeouts")


def _pool_row(p: dict[str, Any], with_app: bool) -> str:
    wait = p.get("acquire_wait_ms") or {}
    p99 = wait.get("p99")
    ready = _badge("ready", "good") if p.get("ready") else _badge(p.get("error") or "not ready", "bad")
    cells = [
        esc(p.get("name", "?")),
        esc(p.get("role", "")),
        ready,
        esc(p.get("in_use", "-")),
        esc(p.get("idle", "-")),
        f"{esc(p.get('size', '-'))} / {esc(p.get('max_size', '-'))}",
        esc(p.get("waiting", "-")),
        esc(f"{p99:.1f} ms" if isinstance(p99, int | float) else "-"),
        esc(p.get("acquire_timeouts_total", "-")),
    ]
    if with_app:
        cells.insert(1, esc(p.get("app") or "-"))
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _pool_table(pools: list[dict[str, Any]]) -> str:
    with_app = any("app" in p for p in pools)
    columns = list(POOL_COLUMNS)
    if with_app:
        columns.insert(1, "app")
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    rows = "".join(_pool_row(p, with_app) for p in pools)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _groups(pools: list[dict[str, Any]]) -> Iterable[tuple[str | None, list[dict[str, Any]]]]:
    if not any("source" in p for p in pools):
        yield None, pools
        return
    sources: dict[str, list[dict[str, Any]]] = {}
    for p in pools:
        sources.setdefault(str(p.get("source") or "other"), []).append(p)
    for name in sorted(sources, key=lambda s: (s != "sidecar", s)):
        yield name, sources[name]


def _pools(pools: list[dict[str, Any]]) -> str:
    parts = []
    for source, group in _groups(pools):
        title = "" if source is None else f"<h3>{esc('the sidecar' if source == 'sidecar' else source)}</h3>"
        parts.append(f'<div class="pool-group" data-source="{esc(source or "")}">{title}{_pool_table(group)}</div>')
    return f'<section id="pools"><h2>Pools</h2>{"".join(parts)}</section>'


def _tile(name: str, value: str, tone: str = "") -> str:
    return (
        f'<div class="tile {tone}"><span class="name">{esc(name)}</span><span class="value">{esc(value)}</span></div>'
    )


def _waiters(count: int | None, longest: float | None) -> str:
    return f"{count} (longest {duration(longest)})" if count else "none"


def _database(d: DatabaseView) -> str:
    tiles = []
    if d.error is not None:
        tiles.append(_tile("sessions", f"unavailable: {d.error}", "bad"))
    else:
        room = d.headroom if d.headroom is not None else 0
        low = d.usable is not None and room < max(1, d.usable // 10)
        tiles += [
            _tile("connections", f"{d.connections} of {d.usable} usable"),
            _tile("headroom", str(d.headroom), "bad" if low else ""),
            _tile("idle in transaction (longest)", duration(d.idle_in_transaction_seconds)),
            _tile("oldest transaction", duration(d.oldest_xact_seconds)),
            _tile("waiting for a lock", _waiters(d.lock_waiters, d.longest_lock_wait_seconds)),
        ]
    if d.wraparound_error is not None:
        tiles.append(_tile("wraparound", f"unavailable: {d.wraparound_error}", "bad"))
    else:
        ratio = max(d.xid_ratio or 0.0, d.mxid_ratio or 0.0)
        tone = "bad" if ratio >= 0.75 else "warn" if ratio >= 0.5 else ""
        tiles.append(_tile("wraparound", f"{ratio:.1%} of the limit", tone))
    return f'<section id="database"><h2>Database (primary)</h2><div class="tiles">{"".join(tiles)}</div></section>'


def _jobs(j: JobsView) -> str:
    if not j.enabled:
        text, tone = "no job worker in this sidecar (FASTERDB_JOBS_ENABLED=false)", "muted"
    elif j.throttled is not None:
        stalled = duration(j.seconds_without_progress)
        text, tone = f"holding a job back: {j.throttled} ({stalled} without progress)", "warn"
    elif j.seconds_without_progress > 0:
        text, tone = f"running a job (last batch {duration(j.seconds_without_progress)} ago)", ""
    else:
        text, tone = "idle", "muted"
    throttled = esc(j.throttled or "")
    return f'<section id="jobs"><h2>Jobs</h2><p class="{tone}" data-throttled="{throttled}">{esc(text)}</p></section>'


def render(view: StatusView) -> str:
    """The page's live part (the content of its ``<main>``)."""
    tone = {"ok": "good", "degraded": "warn", "down": "bad", "draining": "warn"}[view.overall]
    overall = (
        f'<p id="overall" class="banner {tone}" data-overall="{view.overall}">{esc(view.headline)}</p>'
        f'<p class="muted" id="collected">collected {esc(clock(view.at))}</p>'
    )
    return (
        overall
        + _primary(view.primary)
        + _replicas(view)
        + _pools(view.pools)
        + _database(view.database)
        + _jobs(view.jobs)
    )


def title(view: StatusView) -> str:
    """The browser tab's title: the verdict first, so it reads in a row of tabs."""
    return f"{view.overall.upper()} · fasterdb-sidecar"
