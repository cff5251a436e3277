"""The one shared option set: ``--url``, ``--timeout``, ``--output`` (and ``--token``, ``--kube …``).

A command declares only its own options and takes a ``target: Target`` parameter; the
``@sidecar_options`` decorator adds the shared ones to its Typer signature and hands them over
as one ``Target``. Adding a command means writing one function in one module.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer

from .client import SidecarClient
from .output import Output

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 5.0
DEFAULT_SELECTOR = "app.kubernetes.io/name=fasterdb-sidecar"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class KubeTarget:
    """Where to look for sidecar pods (``--kube``)."""

    namespace: str | None
    selector: str
    context: str | None
    timeout: float


@dataclass(frozen=True)
class Target:
    """Which sidecar to ask, how long to wait, and how to print the answer."""

    url: str
    token: str | None
    timeout: float
    output: str
    kube: KubeTarget | None = None

    def client(self) -> SidecarClient:
        """A client for the sidecar at ``url`` (close it when done)."""
        return SidecarClient(self.url, self.token, self.timeout)


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def sidecar_options(
    *,
    token: bool = False,
    output: type[StrEnum] = Output,
    kube: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Callable[[F], F]:
    """Add the shared options to a command whose function takes ``target: Target``.

    ``token``: the command calls admin endpoints (``--token``, env FASTERDB_ADMIN_TOKEN).
    ``output``: the --output choices. ``kube``: ``--kube``, ``-n``, ``-l``, ``--context``.
    """
    shared = [
        _option(
            "url",
            Annotated[str, typer.Option("--url", envvar="FASTERDB_URL", metavar="URL", help="Sidecar base URL.")],
            DEFAULT_URL,
        ),
        _option(
            "timeout",
            Annotated[
                float,
                typer.Option(
                    "--timeout", min=0.1, max=3600, metavar="SECONDS", help="Seconds to wait for the sidecar."
                ),
            ],
            timeout,
        ),
        _option(
            "output",
            Annotated[output, typer.Option("--output", "-o", help="Output format.")],
            next(iter(output)),
        ),
    ]
    if token:
        shared.append(
            _option(
                "token",
                Annotated[
                    str | None,
                    typer.Option(
                        "--token",
                        envvar="FASTERDB_ADMIN_TOKEN",
                        metavar="TOKEN",
                        show_default=False,
                        help="Bearer token of the admin endpoints (env FASTERDB_ADMIN_TOKEN).",
                    ),
                ],
                None,
            )
        )
    if kube:
        shared += [
            _option(
                "kube",
                Annotated[
                    bool,
                    typer.Option(
                        "--kube", help="Find the sidecar pods with the Kubernetes API; ask each through the pod proxy."
                    ),
                ],
                False,
            ),
            _option(
                "namespace",
                Annotated[
                    str | None,
                    typer.Option(
                        "--namespace", "-n", metavar="NAMESPACE", help="--kube: namespace (default: the context's)."
                    ),
                ],
                None,
            ),
            _option(
                "selector",
                Annotated[
                    str,
                    typer.Option("--selector", "-l", metavar="SELECTOR", help="--kube: label selector of the pods."),
                ],
                DEFAULT_SELECTOR,
            ),
            _option(
                "context",
                Annotated[str | None, typer.Option("--context", metavar="CONTEXT", help="--kube: kubeconfig context.")],
                None,
            ),
        ]

    def decorate(fn: F) -> F:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "target"]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            chosen = kwargs.pop("output")
            kube_target = None
            if kube and kwargs.pop("kube"):
                kube_target = KubeTarget(kwargs["namespace"], kwargs["selector"], kwargs["context"], kwargs["timeout"])
            for name in ("namespace", "selector", "context"):
                kwargs.pop(name, None)
            target = Target(
                url=kwargs.pop("url"),
                token=kwargs.pop("token", None),
                timeout=kwargs.pop("timeout"),
                output=chosen.value,
                kube=kube_target,
            )
            return fn(target=target, **kwargs)

        parameters = own + shared
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return command  # type: ignore[return-value]

    return decorate


def positive_id(value: int) -> int:
    """A Typer callback: a positive id (a usage error otherwise), shown as plain ID in --help."""
    if value < 1:
        raise typer.BadParameter("must be a positive whole number")
    return value
