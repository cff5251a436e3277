"""Metric families and their exposition: the Prometheus text format 0.0.4 and OpenMetrics 1.0.0.

The sidecar's own, instead of prometheus_client (issue 24: that library imports its HTTP servers,
urllib, email and html for a scrape we serve ourselves, ~2 MB of resident memory). The family
classes take the same arguments as ``prometheus_client.core``'s, so a collector adds a family the
same way; the output is byte for byte what prometheus_client 0.26 writes for these families
(tests/unit/test_exposition.py compares them), and prometheus_client's parsers and promtool read it
in the tests (the clients users run).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, Protocol

TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
OPENMETRICS_1_0_0 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Name escapings a scraper may ask for (every name here is a legacy one: all read it the same).
ESCAPINGS = frozenset({"allow-utf-8", "underscores", "dots", "values"})


class Sample(NamedTuple):
    """One line of a family: the sample's name (the family's, or with a suffix), labels, value."""

    name: str
    labels: dict[str, str]
    value: float


class Metric:
    """A metric family: name, help, type and samples."""

    __slots__ = ("_labelnames", "documentation", "name", "samples", "type")

    def __init__(self, name: str, documentation: str, typ: str, labels: Sequence[str] | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self.type = typ
        self._labelnames = tuple(labels or ())
        self.samples: list[Sample] = []

    def _labels(self, values: Sequence[str]) -> dict[str, str]:
        return dict(zip(self._labelnames, values, strict=False))


class _ValueFamily(Metric):
    """A family of one value per label set: given ``value`` (no labels), or ``add_metric`` per set."""

    __slots__ = ()
    TYPE = ""
    SUFFIX = ""  # what each sample adds to the family's name

    def __init__(
        self, name: str, documentation: str, value: float | None = None, labels: Sequence[str] | None = None
    ) -> None:
        if labels is not None and value is not None:
            raise ValueError("Can only specify at most one of value and labels.")
        super().__init__(name.removesuffix(self.SUFFIX) if self.SUFFIX else name, documentation, self.TYPE, labels)
        if value is not None:
            self.add_metric([], value)

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        """Add a sample for the label values ``labels``."""
        self.samples.append(Sample(self.name + self.SUFFIX, self._labels(labels), value))


class GaugeMetricFamily(_ValueFamily):
    """A gauge: one value, or one per label set (``add_metric``)."""

    __slots__ = ()
    TYPE = "gauge"


class CounterMetricFamily(_ValueFamily):
    """A counter: named without ``_total`` (its samples carry it)."""

    __slots__ = ()
    TYPE = "counter"
    SUFFIX = "_total"


class HistogramMetricFamily(Metric):
    """A histogram: cumulative buckets (``+Inf`` last), then ``_count`` and ``_sum``."""

    __slots__ = ()

    def __init__(self, name: str, documentation: str, labels: Sequence[str] | None = None) -> None:
        super().__init__(name, documentation, "histogram", labels)

    def add_metric(self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float | None) -> None:
        """Add the buckets ``[(le, cumulative count), ..., ("+Inf", count)]`` and the sum of one label set."""
        for bound, count in buckets:
            self.samples.append(Sample(self.name + "_bucket", self._labels(labels) | {"le": bound}, count))
        if float(buckets[0][0]) >= 0 and sum_value is not None:
            self.samples.append(Sample(self.name + "_count", self._labels(labels), buckets[-1][1]))
            self.samples.append(Sample(self.name + "_sum", self._labels(labels), sum_value))


class Collector(Protocol):
    """Builds metric families at scrape time."""

    def collect(self) -> Iterable[Metric]:
        """The families, built now."""
        ...


def _number(value: float) -> str:
    """A value as Go (and so Prometheus) writes it: ``+Inf``, ``NaN``, ``1e+06``."""
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _line(sample: Sample) -> str:
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
    return (
        f"{sample.name}{{{labels}}} {_number(sample.value)}\n" if labels else f"{sample.name} {_number(sample.value)}\n"
    )


def text(collectors: Iterable[Collector]) -> bytes:
    """The Prometheus text exposition format (counters' HELP and TYPE named with ``_total``)."""
    out = []
    for collector in collectors:
        for metric in collector.collect():
            name = metric.name + "_total" if metric.type == "counter" else metric.name
            help_ = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name} {help_}\n# TYPE {name} {metric.type}\n")
            out.extend(_line(s) for s in metric.samples)
    return "".join(out).encode()


def openmetrics(collectors: Iterable[Collector]) -> bytes:
    """OpenMetrics 1.0.0 (counters' HELP and TYPE named without ``_total``; ``# EOF`` at the end)."""
    out = []
    for collector in collectors:
        for metric in collector.collect():
            out.append(f"# HELP {metric.name} {_escape(metric.documentation)}\n# TYPE {metric.name} {metric.type}\n")
            out.extend(_line(s) for s in metric.samples)
    out.append("# EOF\n")
    return "".join(out).encode()


def _params(media_range: str) -> tuple[str, dict[str, str]]:
    media, *params = media_range.split(";")
    pairs = (p.strip().split("=", 1) for p in params if "=" in p)
    return media.strip(), {k: v for k, v in pairs}


def _at_least_1(version: str) -> bool:
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 1


def negotiate(accept: str) -> tuple[Callable[[Iterable[Collector]], bytes], str]:
    """The format and Content-Type for an Accept header, chosen as prometheus_client's
    ``choose_encoder`` chooses: the first OpenMetrics range without a version or with version 1 or
    later, or the first text/plain range of version 1 or later; else the text format 0.0.4."""
    for media_range in (accept or "").split(","):
        media, params = _params(media_range)
        version = params.get("version", "")
        escaping = params.get("escaping", "underscores")
        escaping = escaping if escaping in ESCAPINGS else "underscores"
        if media == "application/openmetrics-text":
            if not version:
                return openmetrics, OPENMETRICS_1_0_0
            if _at_least_1(version):
                return openmetrics, f"application/openmetrics-text; version=1.0.0; charset=utf-8; escaping={escaping}"
        elif media == "text/plain" and version and _at_least_1(version):
            return text, f"{TEXT_1_0_0}; escaping={escaping}"
    return text, TEXT_0_0_4
