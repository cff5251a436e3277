"""Options shared by every command (--url, --token, --timeout, --output)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.output import Output

Url = Annotated[
    str,
    typer.Option("--url", envvar="FASTERDB_URL", help="Sidecar base URL.", show_default=True),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="FASTERDB_ADMIN_TOKEN",
        help="Bearer token for admin endpoints (env FASTERDB_ADMIN_TOKEN).",
        show_default=False,
    ),
]
Timeout = Annotated[
    float,
    typer.Option("--timeout", min=0.1, max=3600, help="Seconds to wait for the sidecar."),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 5.0

Kube = Annotated[
    bool,
    typer.Option("--kube", help="Find the sidecar pods with the Kubernetes API; ask each through the pod proxy."),
]
Namespace = Annotated[str | None, typer.Option("--namespace", "-n", help="--kube: namespace (default: the context's).")]
Selector = Annotated[str, typer.Option("--selector", "-l", help="--kube: label selector of the sidecar pods.")]
Context = Annotated[str | None, typer.Option("--context", help="--kube: kubeconfig context.")]
