"""The options every command shares, declared once: ``--url``, ``--token``, ``--timeout``, ``--kube``,
``-n``, ``-l``, ``--context`` and ``-o``.

Typer reads them from the signatures of ``connection_options`` and the output declarations below,
as it reads any command's. A command is registered with one of the command classes
(``app.command(cls=CheckCommand)``): the class adds the shared options to the command's own and
hands their values to it as one ``Target`` (``target(ctx)``), so a command declares only its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import typer
from typer.core import TyperCommand

from .client import CliError, SidecarClient
from .kube import KubeTarget
from .output import CheckOutput, Output, diagnose

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 5.0
DEFAULT_SELECTOR = "app.kubernetes.io/name=fasterdb-sidecar"


@dataclass(frozen=True)
class Target:
    """Which sidecar to ask (one URL, or the pods ``--kube`` finds), how long to wait, how to print."""

    url: str
    token: str | None
    timeout: float
    output: str
    kube: KubeTarget | None = None

    def client(self) -> SidecarClient:
        """A client for the sidecar at ``url``; with --kube, for one ready sidecar pod (named on stderr)."""
        if self.kube is None:
            return SidecarClient(self.url, self.token, self.timeout)
        from .kube import one_pod

        return one_pod(self.kube)[1]


def connection_options(
    url: Annotated[str, typer.Option("--url", envvar="FASTERDB_URL", metavar="URL", help="Sidecar base URL.")] = (
        DEFAULT_URL
    ),
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="FASTERDB_ADMIN_TOKEN",
            metavar="TOKEN",
            show_default=False,
            help="The sidecar's admin token (env FASTERDB_ADMIN_TOKEN): sent only where it is used.",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, max=3600, metavar="SECONDS", help="Seconds to wait for each answer."),
    ] = DEFAULT_TIMEOUT,
    kube: Annotated[
        bool,
        typer.Option(
            "--kube",
            help="Find the sidecar pods with the Kubernetes API and ask through the API server's pod proxy "
            "(checks: every pod; see the README for the other commands).",
        ),
    ] = False,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", metavar="NAMESPACE", help="--kube: namespace (default: the context's)."),
    ] = None,
    selector: Annotated[
        str, typer.Option("--selector", "-l", metavar="SELECTOR", help="--kube: label selector of the pods.")
    ] = DEFAULT_SELECTOR,
    context: Annotated[
        str | None, typer.Option("--context", metavar="CONTEXT", help="--kube: kubeconfig context.")
    ] = None,
) -> None:
    """The connection options (a declaration: Typer reads the signature, nothing calls it)."""


def table_or_json(
    output: Annotated[Output, typer.Option("--output", "-o", help="Output format.")] = Output.table,
) -> None:
    """-o of a command that is not a check."""


def table_json_or_nagios(
    output: Annotated[CheckOutput, typer.Option("--output", "-o", help="Output format.")] = CheckOutput.table,
) -> None:
    """-o of a check."""


# The names of the shared options, as the command classes take them out of a command's parameters.
SHARED = (*inspect.signature(connection_options).parameters, "output")


def declared(declaration: Callable[..., None]) -> list[Any]:
    """The click parameters Typer makes of a declaration's signature (fresh ones for every command)."""
    holder = typer.Typer(add_completion=False)
    holder.command()(declaration)
    return list(typer.main.get_command(holder).params)


class SidecarCommand(TyperCommand):
    """A command that asks a sidecar: its own options, then the connection options and -o table|json."""

    declarations: ClassVar[tuple[Callable[..., None], ...]] = (connection_options, table_or_json)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        shared = [param for declaration in self.declarations for param in declared(declaration)]
        kwargs["params"] = [*(kwargs.get("params") or []), *shared]
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:  # Any: typer vendors click, whose Context has no public name
        """Take the shared options out of the command's parameters and hand them over as ``ctx.obj``."""
        shared = {name: ctx.params.pop(name, None) for name in SHARED}
        timeout = float(shared["timeout"])
        kube = (
            KubeTarget(shared["namespace"], shared["selector"] or DEFAULT_SELECTOR, shared["context"], timeout)
            if shared["kube"]
            else None
        )
        ctx.obj = Target(shared["url"], shared["token"], timeout, str(shared["output"] or Output.table), kube)
        self.vet(ctx.obj)
        return super().invoke(ctx)

    def vet(self, target: Target) -> None:
        """Refuse what this kind of command cannot do with these options (nothing, here)."""


class CheckCommand(SidecarCommand):
    """A check: -o table|json|nagios; with --kube it asks every sidecar pod."""

    declarations = (connection_options, table_json_or_nagios)


class AdminCommand(SidecarCommand):
    """A command of the admin endpoints (the bearer token): with --kube it cannot reach a sidecar."""

    def vet(self, target: Target) -> None:
        """The API server's pod proxy drops the Authorization header: say how to reach a sidecar instead."""
        if target.kube is not None:
            from .kube import port_forward_advice

            raise CliError(port_forward_advice(target.kube))


class OfflineCommand(SidecarCommand):
    """A command that asks no sidecar (it reads files): it accepts the connection options and uses none."""

    declarations = (connection_options,)

    def vet(self, target: Target) -> None:
        """--kube is said to have no effect, never ignored silently."""
        if target.kube is not None:
            name = self.name or "this command"
            diagnose(f"{name} reads files and asks no sidecar or cluster: --kube has no effect here")


def target(ctx: typer.Context) -> Target:
    """The shared options of the running command (set by its command class)."""
    if not isinstance(ctx.obj, Target):
        raise RuntimeError(f"{ctx.command_path} is not registered with a command class of cli.options")
    return ctx.obj


def positive_id(value: int) -> int:
    """A Typer callback: a positive id (a usage error otherwise), shown as plain ID in --help."""
    if value < 1:
        raise typer.BadParameter("must be a positive whole number")
    return value
