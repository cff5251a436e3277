"""``fasterdb-admin inject``: add the sidecar to the user's own workloads, like ``linkerd inject``.

Reads Kubernetes YAML (many documents, or a ``List``), adds the sidecar to the pod template of
every Deployment, StatefulSet, DaemonSet, Job and CronJob, and writes everything back to stdout;
other objects pass through unchanged. Idempotent: a sidecar already there is replaced by the same
one, so a second run changes nothing. The container is exactly what the chart's
``fasterdb-sidecar.container`` template renders with its default values (tests/chart checks
that), so both paths give the same pod.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml

from .. import __version__
from ..client import CliError
from ..exitcodes import Exit

CONTAINER = "fasterdb-sidecar"  # in every mode (chart, inject): how `fasterdb-admin --kube` finds it
SECRETS_VOLUME = "fasterdb-secrets"
TMP_VOLUME = "fasterdb-tmp"
SECRETS_DIR = "/etc/fasterdb/secrets"
PORT_NAME = "fasterdb-http"
# The sidecar's user; its group is what the pod's fsGroup gives the secret files to when the
# pod has none of its own.
SIDECAR_GROUP = 10001
Mode = Literal["native", "container"]
# Where each kind keeps its pod template.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
RUN_TO_COMPLETION = ("Job", "CronJob")


class InjectMode(StrEnum):
    """Where the sidecar goes in the pod."""

    native = "native"
    container = "container"


@dataclass(frozen=True)
class Sidecar:
    """What to inject: where, which Secret, which image, which port."""

    mode: Mode
    secret: str
    image: str
    port: int = 8080

    def container(self) -> dict[str, Any]:
        """The sidecar container, as the chart renders it with its default values."""
        native = self.mode == "native"
        env = [
            {"name": "FASTERDB_PRIMARY_DSN_FILE", "value": f"{SECRETS_DIR}/primary-dsn"},
            {"name": "FASTERDB_REPLICA_DSNS_FILE", "value": f"{SECRETS_DIR}/replica-dsns"},
            {"name": "FASTERDB_ADMIN_TOKEN_FILE", "value": f"{SECRETS_DIR}/admin-token"},
            {"name": "FASTERDB_HOST", "value": "0.0.0.0"},
            {"name": "FASTERDB_PORT", "value": str(self.port)},
            {"name": "FASTERDB_POOL_MIN_SIZE", "value": "1"},
            {"name": "FASTERDB_POOL_MAX_SIZE", "value": "10"},
            {"name": "FASTERDB_MAX_LAG_BYTES", "value": "16MB"},
            {"name": "FASTERDB_MAX_LAG_SECONDS", "value": "10"},
            {"name": "FASTERDB_HEALTH_TIMEOUT", "value": "1"},
            {"name": "FASTERDB_HEALTH_CACHE_TTL", "value": "1"},
            {"name": "FASTERDB_JOB_MAX_REPLICA_LAG_BYTES", "value": "64MB"},
            {"name": "FASTERDB_JOB_MAX_POOL_WAITING", "value": "4"},
            {"name": "FASTERDB_SCHEMA", "value": "fasterdb"},
            {"name": "FASTERDB_LOG_LEVEL", "value": "info"},
            # Native: stopped after the application has exited, nobody needs a drain delay.
            {"name": "FASTERDB_DRAIN_MIN_SECONDS", "value": "0" if native else "5"},
            {"name": "FASTERDB_SHUTDOWN_TIMEOUT", "value": "10"},
        ]

        def probe(path: str, period: int, failures: int, **more: int) -> dict[str, Any]:
            return {
                "httpGet": {"path": path, "port": PORT_NAME},
                "periodSeconds": period,
                "timeoutSeconds": 2,
                "failureThreshold": failures,
                **more,
            }

        container: dict[str, Any] = {"name": CONTAINER, "image": self.image, "imagePullPolicy": "IfNotPresent"}
        if native:
            container["restartPolicy"] = "Always"
        container |= {
            "ports": [{"name": PORT_NAME, "containerPort": self.port, "protocol": "TCP"}],
            "env": env,
            "startupProbe": probe("/health/startup", 1, 30),
            "readinessProbe": probe("/health/db", 5, 2, successThreshold=1),
            "livenessProbe": probe("/health/live", 10, 3),
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
            },
            "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "50m", "memory": "64Mi"}},
            "volumeMounts": [
                {"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True},
                {"name": TMP_VOLUME, "mountPath": "/tmp"},
            ],
        }
        return container

    def volumes(self) -> list[dict[str, Any]]:
        """The Secret as 0400 files (optional keys may be missing) and a small writable /tmp."""

        def source(key: str, optional: bool) -> dict[str, Any]:
            secret: dict[str, Any] = {"name": self.secret}
            if optional:
                secret["optional"] = True
            secret["items"] = [{"key": key, "path": key}]
            return {"secret": secret}

        sources = [source("primary-dsn", False), source("replica-dsns", True), source("admin-token", True)]
        return [
            {"name": SECRETS_VOLUME, "projected": {"defaultMode": 0o400, "sources": sources}},
            {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}},
        ]


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name', '?')}"


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    node: Any = obj
    for key in POD_SPEC_PATHS[obj["kind"]]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            raise CliError(f"inject: {_name(obj)} has no pod template at {'.'.join(POD_SPEC_PATHS[obj['kind']])}")
        node = node[key]
    return node if isinstance(node, dict) else None


def inject_pod(spec: dict[str, Any], sidecar: Sidecar, what: str, notes: list[str]) -> None:
    """Add the sidecar to one pod spec (replacing one that is already there)."""
    containers = [c for c in spec.get("containers") or [] if c.get("name") != CONTAINER]
    init = [c for c in spec.get("initContainers") or [] if c.get("name") != CONTAINER]
    if not containers:
        raise CliError(f"inject: {what} has no containers")
    for container in containers + init:
        for port in container.get("ports") or []:
            if port.get("containerPort") == sidecar.port:
                raise CliError(
                    f"inject: port {sidecar.port} is taken by container {container.get('name')!r} of {what}; "
                    "choose another with --port"
                )
            if port.get("name") == PORT_NAME:
                raise CliError(f"inject: port name {PORT_NAME!r} is taken by container {container.get('name')!r}")
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in (SECRETS_VOLUME, TMP_VOLUME)]
    if sidecar.mode == "native":
        # First: the application (and any later init container) starts once the sidecar's
        # startup probe has passed.
        init.insert(0, sidecar.container())
    else:
        containers.append(sidecar.container())  # after the application: it stays kubectl's default
    # initContainers just before containers, as people write them; other keys keep their order.
    rest = {k: v for k, v in spec.items() if k not in ("initContainers", "containers")}
    spec.clear()
    spec.update(({"initContainers": init} if init else {}) | {"containers": containers} | rest)
    spec["volumes"] = volumes + sidecar.volumes()
    security = spec.setdefault("securityContext", {}) or {}
    spec["securityContext"] = security
    if "fsGroup" not in security:
        security["fsGroup"] = SIDECAR_GROUP
        notes.append(f"{what}: set securityContext.fsGroup={SIDECAR_GROUP} so the sidecar can read its secret files")


def inject_documents(documents: list[Any], sidecar: Sidecar) -> tuple[list[Any], list[str], int]:
    """Every document with the sidecar added where it belongs; (documents, notes, workloads injected)."""
    notes: list[str] = []
    count = 0

    def visit(obj: Any) -> None:
        nonlocal count
        if not isinstance(obj, dict):
            return
        kind = obj.get("kind")
        if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in obj):
            for item in obj.get("items") or []:
                visit(item)
            return
        if kind not in POD_SPEC_PATHS:
            return
        what = _name(obj)
        if kind in RUN_TO_COMPLETION and sidecar.mode == "container":
            raise CliError(
                f"inject: {what} runs to completion, and a regular sidecar container never exits, so the "
                "job would never finish: use --mode native (Kubernetes 1.29 or newer)"
            )
        spec = _pod_spec(obj)
        if spec is not None:
            inject_pod(spec, sidecar, what, notes)
            count += 1

    for document in documents:
        visit(document)
    return documents, notes, count


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"inject: cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"inject: {source} is not UTF-8 text") from None


def _parse(text: str, source: str) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CliError(f"inject: {'stdin' if source == '-' else source} is not valid YAML{line}: {problem}") from None


def inject(
    file: Annotated[
        str,
        typer.Option("--file", "-f", metavar="FILE", help="Kubernetes YAML to read ('-': stdin)."),
    ],
    mode: Annotated[
        InjectMode,
        typer.Option(
            "--mode",
            metavar="native|container",
            help="native: an init container with restartPolicy Always (Kubernetes >= 1.29; the app starts "
            "after the sidecar, which stops after the app); container: a regular container.",
        ),
    ] = InjectMode.native,
    secret: Annotated[
        str,
        typer.Option(
            "--secret",
            metavar="NAME",
            help="The Secret with keys primary-dsn, replica-dsns (optional), admin-token (optional).",
        ),
    ] = "fasterdb-db",
    image: Annotated[str, typer.Option("--image", metavar="IMAGE", help="The sidecar image.")] = (
        f"fasterdb-sidecar:{__version__}"
    ),
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, metavar="PORT", help="The sidecar's port in the pod.")
    ] = 8080,
) -> Exit:
    """Add the sidecar to the workloads in FILE and write them to stdout (a second run changes nothing).

    \b
    Example:
      fasterdb-admin inject -f deployment.yaml | kubectl apply -f -
    """
    documents = _parse(_read(file), file)
    sidecar = Sidecar("native" if mode is InjectMode.native else "container", secret, image, port)
    documents, notes, count = inject_documents(documents, sidecar)
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False))
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    if count == 0:
        sys.stderr.write("note: no Deployment, StatefulSet, DaemonSet, Job or CronJob found; nothing injected\n")
    return Exit.OK
