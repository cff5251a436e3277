"""The sidecar's exposition writes what prometheus_client 0.26 writes for the same families.

The same families are built with both libraries' classes (label values and help with every
character that needs escaping, values Go writes in exponent form, infinities, NaN, a histogram);
both formats are compared byte for byte, and the Content-Type choice against ``choose_encoder``
for the Accept headers scrapers send. prometheus_client is a test dependency only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, core
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from fasterdb_sidecar.metrics import exposition as ours

HELP = 'Help with a backslash \\, a quote " and a\nnewline'
VALUES = [0, 1, -2.5, 0.1, 1234567.0, 12345678.9, 1e-9, 3e20, math.inf, -math.inf, math.nan]


def _families(lib: Any) -> Iterator[Any]:
    """The same families, built with ``lib``'s classes (prometheus_client.core or ours)."""
    yield lib.GaugeMetricFamily("t_single", "A gauge without labels", value=42)
    gauge = lib.GaugeMetricFamily("t_gauge", HELP, labels=["pool", "zone", "app"])
    for i, value in enumerate(VALUES):
        gauge.add_metric([f'p"{i}\\\n', "é ü", ""], value)
    yield gauge
    counter = lib.CounterMetricFamily("t_events", "Events by kind", labels=["kind"])
    for kind, count in (("b", 3), ("a", 0), ("c", 1e6)):
        counter.add_metric([kind], float(count))
    yield counter
    yield lib.CounterMetricFamily("t_plain_total", "A counter named with _total", value=7)
    yield lib.GaugeMetricFamily("t_empty", "No samples", labels=["x"])
    hist = lib.HistogramMetricFamily("t_wait_seconds", "A histogram", labels=["pool"])
    for pool in ("primary", "replica"):
        hist.add_metric([pool], [("0.0001", 0.0), ("0.01", 3.0), ("1", 5.0), ("+Inf", 6.0)], sum_value=1.25)
    yield hist


class _Both:
    def __init__(self, lib: Any) -> None:
        self.lib = lib

    def collect(self) -> Iterator[Any]:
        return _families(self.lib)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Both(core))  # type: ignore[arg-type]
    return registry


def test_the_text_format_is_prometheus_clients() -> None:
    assert ours.text([_Both(ours)]) == generate_latest(_registry())


def test_openmetrics_is_prometheus_clients() -> None:
    assert ours.openmetrics([_Both(ours)]) == generate_openmetrics(_registry())


ACCEPTS = [
    "",
    "*/*",
    "text/plain",
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text; version=1.0.0; escaping=underscores",
    "application/openmetrics-text;version=0.0.1,text/plain;version=0.0.4",
    # Prometheus 3.x (scrape_protocols' default order), and 2.x.
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;"
    "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_format_is_chosen_as_prometheus_client_chooses(accept: str) -> None:
    encoder, content_type = ours.negotiate(accept)
    theirs, their_type = choose_encoder(accept)
    assert content_type == their_type
    assert encoder([_Both(ours)]) == theirs(_registry())


def test_a_gauge_takes_a_value_or_labels_not_both() -> None:
    with pytest.raises(ValueError):
        ours.GaugeMetricFamily("t", "h", value=1, labels=["a"])
