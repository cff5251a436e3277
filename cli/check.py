"""The one shape of every check command: fetch → verdict → table, JSON or Nagios line.

A check module supplies a ``fetch(client) -> Verdict`` (one sidecar's answer, judged) and a
``Verdict`` subclass that knows its table, its JSON document, its Nagios summary and perfdata.
``run_check`` does the rest the same way for every check: one sidecar (``--url``), or every pod
``--kube`` finds (one section per pod, one Nagios line for all, the worst exit code).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rich.console import Group, RenderableType
from rich.text import Text

from .client import CliError, SidecarClient
from .exitcodes import Exit, worst
from .nagios import status_line
from .options import Target
from .output import emit, styled


class Verdict(ABC):
    """One sidecar's answer, judged: what a check prints in each format."""

    code: Exit

    @abstractmethod
    def table(self) -> RenderableType:
        """The human view (-o table)."""

    @abstractmethod
    def document(self) -> Any:
        """The JSON view (-o json): the sidecar's body plus the verdicts."""

    @abstractmethod
    def summary(self) -> str:
        """The text of the Nagios line: what matters, in one line."""

    @abstractmethod
    def perfdata(self, prefix: str = "") -> list[str]:
        """The Nagios perfdata items; ``prefix`` goes before every label (the pod's name, across pods)."""


V = TypeVar("V", bound=Verdict)


@dataclass(frozen=True)
class PodVerdict(Generic[V]):
    """One pod's answer across pods: its verdict, or why there is none."""

    pod: str
    code: Exit
    verdict: V | None = None
    error: str | None = None


def nagios_line(service: str, verdict: Verdict) -> str:
    """``SERVICE STATE - summary | perfdata`` of one sidecar."""
    return status_line(service, verdict.code, verdict.summary(), verdict.perfdata())


def report(service: str, verdict: Verdict, output: str) -> None:
    """Print one sidecar's verdict in the chosen format."""
    emit(verdict, output, lambda v: v.table(), lambda v: nagios_line(service, v), lambda v: v.document())


def ask_pods(clients: dict[str, SidecarClient], fetch: Callable[[SidecarClient], V]) -> list[PodVerdict[V]]:
    """``fetch`` from every pod, in the order of their names; a pod that fails counts with its own code."""
    results: list[PodVerdict[V]] = []
    for pod, client in sorted(clients.items()):
        try:
            verdict = fetch(client)
            results.append(PodVerdict(pod, verdict.code, verdict))
        except CliError as exc:
            results.append(PodVerdict(pod, exc.code, error=exc.message))
    return results


def pods_line(service: str, results: list[PodVerdict[V]]) -> str:
    """One Nagios line for several pods: the worst code, each pod's summary, perfdata labels prefixed with the pod."""
    summaries, perf = [], []
    for r in results:
        summaries.append(f"{r.pod}: {r.verdict.summary() if r.verdict else r.error}")
        perf += r.verdict.perfdata(f"{r.pod}/") if r.verdict else []
    return status_line(service, worst([r.code for r in results]), "; ".join(summaries), perf)


def pods_table(results: list[PodVerdict[V]]) -> Group:
    """Each pod's verdict under its name (or why it gave none)."""
    parts: list[RenderableType] = []
    for r in results:
        parts.append(Text(f"pod {r.pod}: ", style="bold") + styled(r.code.name))
        parts.append(r.verdict.table() if r.verdict else Text(str(r.error), style="red"))
    return Group(*parts)


def pods_document(results: list[PodVerdict[V]]) -> dict[str, Any]:
    """``{"pods": [{"pod", "exit", "result"} or {"pod", "exit", "error"}]}``."""
    return {
        "pods": [
            {"pod": r.pod, "exit": r.code.name, "result": r.verdict.document()}
            if r.verdict
            else {"pod": r.pod, "exit": r.code.name, "error": r.error}
            for r in results
        ]
    }


def report_pods(service: str, results: list[PodVerdict[V]], output: str) -> Exit:
    """Print every pod's verdict in the chosen format; the worst code."""
    emit(results, output, pods_table, lambda r: pods_line(service, r), pods_document)
    return worst([r.code for r in results])


def run_check(target: Target, service: str, fetch: Callable[[SidecarClient], Verdict]) -> Exit:
    """Fetch and judge, then print: from the sidecar at --url, or from every pod --kube finds."""
    if target.kube is not None:
        from .kube import pod_clients

        with pod_clients(target.kube) as clients:
            results = ask_pods(clients, fetch)
        return report_pods(service, results, target.output)
    with target.client() as client:
        verdict = fetch(client)
    report(service, verdict, target.output)
    return verdict.code
