"""``fasterdb-admin budget``: will the fleet's pools exhaust the primary's max_connections? (/db/budget)"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import BUDGET_CRITICAL_RATIO, BUDGET_WARNING_RATIO, BudgetBody

from ..check import Verdict, report
from ..client import SidecarClient
from ..exitcodes import Exit
from ..nagios import Range, perfdata
from ..options import target
from ..output import make_table, percent, state_style

SERVICE = "BUDGET"
CODES = {"ok": Exit.OK, "warning": Exit.WARNING, "critical": Exit.CRITICAL}
# The verdict's ratio thresholds, as the sidecar applies them (service.budget).
WARN, CRIT = Range.above(BUDGET_WARNING_RATIO), Range.above(BUDGET_CRITICAL_RATIO)


@dataclass(frozen=True)
class BudgetCheck(Verdict):
    """The sidecar's answer, where the pod counts came from, and the verdict."""

    body: BudgetBody
    source: str
    code: Exit

    def table(self) -> Group:
        """The sum, the verdict and the guidance."""
        return table(self)

    def document(self) -> Any:
        """The sidecar's body plus the verdict and where the pod counts came from."""
        document: dict[str, Any] = msgspec.to_builtins(self.body)
        document["check"], document["source"] = self.code.name, self.source
        return document

    def summary(self) -> str:
        """Required against usable, and what to set."""
        b = self.body
        line = (
            f"{b.required} of {b.usable} usable connections ({b.ratio:.0%}): ({b.pods}+{b.surge} pods) x "
            f"{b.per_pod} + {b.others} others"
        )
        if self.code is not Exit.OK:
            fits = f"; set the application's pool max to at most {b.recommended_pool_max} per pod"
            line += fits if b.recommended_pool_max else "; nothing fits"
        return line

    def perfdata(self, prefix: str = "") -> list[str]:
        """Connections required, the ratio to the usable ones, the others connected."""
        b = self.body
        return [
            perfdata(f"{prefix}required", b.required, "", None, None, 0, b.usable),
            perfdata(f"{prefix}ratio", b.ratio, "", WARN, CRIT, 0),
            perfdata(f"{prefix}others", b.others),
        ]


APP_POOLS = {"given": "--app-pool-max", "reported": "as the application reports them", "none": "none reported"}


def fetch(
    client: SidecarClient, pods: int, surge: int, app_pool_max: int | None, app_name: str | None, source: str
) -> BudgetCheck:
    """Ask /db/budget for this fleet."""
    reply = client.get("/db/budget", pods=pods, surge=surge, app_pool_max=app_pool_max, app_name=app_name)
    if reply.status != 200:
        raise reply.failure("/db/budget")
    body = reply.decode(BudgetBody)
    return BudgetCheck(body, source, CODES[body.status])


def table(check: BudgetCheck) -> Group:
    """The sum, the verdict and the guidance."""
    b = check.body
    rows = [
        ["pods (at most)", b.pods, check.source],
        ["surge (rolling update)", b.surge, ""],
        [
            "per pod",
            b.per_pod,
            f"sidecar {b.sidecar_per_pod} + application pools {b.app_pool_max} ({APP_POOLS[b.app_pool_source]})",
        ],
        ["fleet", b.fleet, "(pods + surge) x per pod"],
        ["others now connected", b.others, "client backends that are not the fleet's"],
        ["required", b.required, ""],
        [
            "usable",
            b.usable,
            f"max_connections {b.max_connections} - reserved "
            f"{b.superuser_reserved_connections} (superuser) - {b.reserved_connections} (pg_use_reserved_connections)",
        ],
        [
            "ratio",
            Text(f"{b.ratio:.1%}", style=state_style(check.code.name)),
            f"warning {WARN.describe(percent)}, critical {CRIT.describe(percent)}",
        ],
        ["recommended pool max", b.recommended_pool_max, "keeps the fleet at or below 80 % of usable"],
    ]
    guidance = make_table(
        "pool max by workload (guidance)",
        ["workload", "pool max per pod", "why"],
        [[g.workload, g.pool_max, g.why] for g in b.guidance],
    )
    return Group(
        Text(f"connection budget: {check.code.name} - {check.summary()}", style=state_style(check.code.name)),
        make_table(None, ["", "connections", "from"], rows),
        guidance,
    )


def budget(
    ctx: typer.Context,
    pods: Annotated[
        int | None,
        typer.Option("--pods", min=1, max=100000, metavar="N", help="Pods at most (e.g. the autoscaler's maximum)."),
    ] = None,
    surge: Annotated[
        int | None, typer.Option("--surge", min=0, max=100000, metavar="N", help="Extra pods during a rolling update.")
    ] = None,
    app_pool_max: Annotated[
        int | None,
        typer.Option(
            "--app-pool-max",
            min=0,
            max=10000,
            metavar="N",
            help="The application's pools' max per pod (default: as the application reports it to its sidecar).",
        ),
    ] = None,
    app_name: Annotated[
        str | None,
        typer.Option(
            "--app-name",
            metavar="PREFIX",
            help="application_name prefix of the application's connections (not counted as others).",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", metavar="NAME", help="--kube: read pods, maxSurge and the HPA from it."),
    ] = None,
) -> Exit:
    """Connections the fleet may open against the primary's usable ones: OK, WARNING > 80 %, CRITICAL > 100 %.

    Per pod: what the sidecar keeps open and the application's pools' max, as the application
    reports it (or --app-pool-max). With --kube and --deployment, pods, surge and the autoscaler's
    maximum come from the cluster, the application's pools from one of its pods.

    \b
    Example:
      fasterdb-admin budget --pods 12 --surge 3 --app-pool-max 10
    """
    chosen = target(ctx)
    if chosen.kube is None:
        if deployment is not None:
            raise typer.BadParameter("needs --kube", param_hint="--deployment")
        source = "--pods" if pods else "default 1"
        with chosen.client() as client:
            check = fetch(client, pods or 1, surge or 0, app_pool_max, app_name, source)
    else:
        from ..fleet import deployment_fleet
        from ..kube import one_pod

        if deployment is None:
            raise typer.BadParameter("--kube needs --deployment NAME", param_hint="--deployment")
        if pods is not None or surge is not None:
            raise typer.BadParameter("comes from the Deployment with --kube", param_hint="--pods/--surge")
        fleet = deployment_fleet(chosen.kube, deployment)
        source = f"Deployment {fleet.name}: replicas {fleet.replicas}" + (
            f", HPA max {fleet.hpa_max}" if fleet.hpa_max is not None else ""
        )
        name, proxied = one_pod(replace(chosen.kube, selector=fleet.selector))
        with proxied as client:
            check = fetch(client, fleet.pods, fleet.surge, app_pool_max, app_name, f"{source} (asked pod {name})")
    report(SERVICE, check, chosen.output)
    return check.code
