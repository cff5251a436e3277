"""``fasterdb-admin inject`` / ``uninject``: the sidecar in the user's own workloads, like ``linkerd inject``.

Reads Kubernetes YAML (many documents, or a ``List``), adds the sidecar to the pod template of
every Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, Argo
Rollout and bare Pod, and writes everything back to stdout; other objects pass through unchanged.
The pod template gets an annotation recording what was added (and by which version), so a second
run replaces exactly that (nothing changes) and ``uninject`` removes exactly that. The container
is what the chart's ``fasterdb-sidecar.container`` template renders with its default values
(tests/chart checks that), so both paths give the same pod.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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
VOLUMES = (SECRETS_VOLUME, TMP_VOLUME)
SECRETS_DIR = "/etc/fasterdb/secrets"
PORT_NAME = "fasterdb-http"
# The published image (the chart's default image.repository; tests/chart checks they agree).
IMAGE_REPOSITORY = "ghcr.io/fasterdb-ops/fasterdb-sidecar"
# The image's user and group: the container's own, whatever the pod runs as.
SIDECAR_USER = 10001
# On the pod template: what inject added, as JSON (version, mode, container, volumes, ...).
ANNOTATION = "fasterdb-ops/injected"
Mode = Literal["native", "container"]
# Where each kind keeps its pod spec (the pod template's metadata is beside it).
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Rollout": ("spec", "template", "spec"),  # Argo Rollouts (argoproj.io)
    "Pod": ("spec",),
}
RUN_TO_COMPLETION = ("Job", "CronJob")
KINDS_TEXT = "Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, Rollout or Pod"


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
            # Both address families (IPv6-only clusters too); the sidecar falls back to IPv4.
            {"name": "FASTERDB_HOST", "value": "::"},
            {"name": "FASTERDB_PORT", "value": str(self.port)},
            {"name": "FASTERDB_POOL_MIN_SIZE", "value": "0"},
            {"name": "FASTERDB_POOL_MAX_SIZE", "value": "10"},
            {"name": "FASTERDB_MAX_LAG_BYTES", "value": "16MB"},
            {"name": "FASTERDB_MAX_LAG_SECONDS", "value": "10"},
            {"name": "FASTERDB_HEALTH_TIMEOUT", "value": "1"},
            {"name": "FASTERDB_HEALTH_CACHE_TTL", "value": "0.1"},
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
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "runAsUser": SIDECAR_USER,
                "runAsGroup": SIDECAR_USER,
                "seccompProfile": {"type": "RuntimeDefault"},
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "50m", "memory": "64Mi"}},
            "volumeMounts": [
                {"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True},
                {"name": TMP_VOLUME, "mountPath": "/tmp"},
            ],
        }
        return container

    def volumes(self) -> list[dict[str, Any]]:
        """The Secret as read-only files (optional keys may be missing) and a small writable /tmp."""

        def source(key: str, optional: bool) -> dict[str, Any]:
            secret: dict[str, Any] = {"name": self.secret}
            if optional:
                secret["optional"] = True
            secret["items"] = [{"key": key, "path": key}]
            return {"secret": secret}

        sources = [source("primary-dsn", False), source("replica-dsns", True), source("admin-token", True)]
        return [
            # 0444: readable to the sidecar's user without a pod-wide fsGroup (which would chown the
            # pod's data volumes); only the sidecar container mounts it.
            {"name": SECRETS_VOLUME, "projected": {"defaultMode": 0o444, "sources": sources}},
            {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}},
        ]


@dataclass
class Workload:
    """One object with a pod template: its name for messages, the pod spec and the template's metadata."""

    what: str
    kind: str
    spec: dict[str, Any]
    template: dict[str, Any]  # the object holding `metadata` of the pod (the Pod itself for a Pod)


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name', '?')}"


def _has_pod_template(obj: dict[str, Any]) -> bool:
    kind = obj.get("kind")
    if kind == "Rollout":
        return str(obj.get("apiVersion", "")).startswith("argoproj.io/")
    if kind == "Pod":
        return str(obj.get("apiVersion", "v1")) == "v1"
    return kind in POD_SPEC_PATHS


def _workload(obj: dict[str, Any]) -> Workload:
    kind, what = str(obj["kind"]), _name(obj)
    path = POD_SPEC_PATHS[kind]
    if kind == "Rollout" and "template" not in (obj.get("spec") or {}) and "workloadRef" in (obj.get("spec") or {}):
        raise CliError(
            f"inject: {what} takes its pod template from spec.workloadRef: inject the Deployment it refers to"
        )
    node: Any = obj
    parent: dict[str, Any] = obj
    for key in path:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            raise CliError(f"inject: {what} has no pod template at {'.'.join(path)}")
        parent, node = node, node[key]
    return Workload(what, kind, node, parent)


def _annotations(workload: Workload) -> dict[str, Any]:
    metadata = workload.template.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def _record(workload: Workload) -> dict[str, Any] | None:
    """What inject added to this pod template earlier (its annotation), or None."""
    text = _annotations(workload).get(ANNOTATION)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except (TypeError, ValueError):
        record = None
    if not (
        isinstance(record, dict)
        and record.get("mode") in ("native", "container")
        and isinstance(record.get("container"), str)
        and isinstance(record.get("volumes"), list)
        and isinstance(record.get("created", []), list)
    ):
        raise CliError(f"inject: {workload.what}: its {ANNOTATION} annotation is not one inject wrote; fix or drop it")
    return record


def remove(workload: Workload) -> bool:
    """Remove exactly what inject added to the pod template (per its annotation); False if it has none."""
    record = _record(workload)
    if record is None:
        return False
    spec = workload.spec
    where = "initContainers" if record["mode"] == "native" else "containers"
    spec[where] = [c for c in spec.get(where) or [] if c.get("name") != record["container"]]
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v.get("name") not in record["volumes"]]
    metadata = workload.template.setdefault("metadata", {})
    annotations = metadata.setdefault("annotations", {})
    annotations.pop(ANNOTATION, None)
    # What inject created to hold its additions goes when it is empty again.
    created = set(record.get("created", []))
    for key in ("initContainers", "volumes"):
        if key in created and not spec.get(key):
            spec.pop(key, None)
    if "annotations" in created and not annotations:
        metadata.pop("annotations", None)
    if "metadata" in created and not metadata:
        workload.template.pop("metadata", None)
    return True


def add(workload: Workload, sidecar: Sidecar, notes: list[str]) -> None:
    """Add the sidecar to one pod template and record what was added in its annotation."""
    spec, what = workload.spec, workload.what
    containers = list(spec.get("containers") or [])
    init = list(spec.get("initContainers") or [])
    if not containers:
        raise CliError(f"inject: {what} has no containers")
    for container in containers + init:
        if container.get("name") == CONTAINER:
            raise CliError(
                f"inject: {what} already has a {CONTAINER} container that inject did not add "
                f"(no {ANNOTATION} annotation; from the chart's templates?): remove it first"
            )
        for port in container.get("ports") or []:
            if port.get("containerPort") == sidecar.port:
                raise CliError(
                    f"inject: port {sidecar.port} is taken by container {container.get('name')!r} of {what}; "
                    "choose another with --port"
                )
            if port.get("name") == PORT_NAME:
                raise CliError(f"inject: port name {PORT_NAME!r} is taken by container {container.get('name')!r}")
    clash = [v.get("name") for v in spec.get("volumes") or [] if v.get("name") in VOLUMES]
    if clash:
        raise CliError(f"inject: {what} already has a volume named {clash[0]!r}; rename it first")
    if spec.get("hostNetwork"):
        notes.append(
            f"WARNING: {what} uses the node's network (hostNetwork): the sidecar listens on port "
            f"{sidecar.port} of every address of each node it runs on, reachable from outside the cluster "
            "wherever the nodes are"
        )
    created = [] if "volumes" in spec else ["volumes"]
    had_init = "initContainers" in spec
    if sidecar.mode == "native":
        # First: the application (and any later init container) starts once the sidecar's
        # startup probe has passed.
        init.insert(0, sidecar.container())
        created += [] if had_init else ["initContainers"]
    else:
        containers.append(sidecar.container())  # after the application: it stays kubectl's default
    # initContainers just before containers, as people write them; other keys keep their order.
    rest = {k: v for k, v in spec.items() if k not in ("initContainers", "containers")}
    spec.clear()
    spec.update(({"initContainers": init} if init or had_init else {}) | {"containers": containers} | rest)
    spec["volumes"] = list(spec.get("volumes") or []) + sidecar.volumes()
    if not isinstance(workload.template.get("metadata"), dict):
        created.append("metadata")
        workload.template["metadata"] = {}
    metadata = workload.template["metadata"]
    if not isinstance(metadata.get("annotations"), dict):
        created.append("annotations")
        metadata["annotations"] = {}
    record = {
        "version": __version__,
        "mode": sidecar.mode,
        "container": CONTAINER,
        "volumes": list(VOLUMES),
        "image": sidecar.image,
        "secret": sidecar.secret,
        "port": sidecar.port,
        "created": created,
    }
    metadata["annotations"][ANNOTATION] = json.dumps(record, separators=(",", ":"))


def _visit(documents: list[Any], act: Callable[[dict[str, Any]], None]) -> None:
    def visit(obj: Any) -> None:
        if not isinstance(obj, dict):
            return
        kind = obj.get("kind")
        if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in obj):
            for item in obj.get("items") or []:
                visit(item)
        elif _has_pod_template(obj):
            act(obj)

    for document in documents:
        visit(document)


def inject_documents(
    documents: list[Any], sidecar: Sidecar, *, allow_host_network: bool = False
) -> tuple[list[Any], list[str], int]:
    """Every document with the sidecar added where it belongs; (documents, notes, workloads injected)."""
    notes: list[str] = []
    count = 0

    def act(obj: dict[str, Any]) -> None:
        nonlocal count
        workload = _workload(obj)
        what = workload.what
        completes = workload.kind in RUN_TO_COMPLETION or (
            workload.kind == "Pod" and workload.spec.get("restartPolicy") in ("Never", "OnFailure")
        )
        if completes and sidecar.mode == "container":
            raise CliError(
                f"inject: {what} runs to completion, and a regular sidecar container never exits, so it "
                "would never finish: use --mode native (Kubernetes 1.29 or newer)"
            )
        if workload.spec.get("hostNetwork") and not allow_host_network:
            raise CliError(
                f"inject: {what} uses the node's network (hostNetwork): the sidecar would listen on port "
                f"{sidecar.port} of every node; refused (--allow-host-network to inject it all the same)"
            )
        remove(workload)  # what an earlier run added: replaced, so a second run changes nothing
        add(workload, sidecar, notes)
        count += 1

    _visit(documents, act)
    return documents, notes, count


def uninject_documents(documents: list[Any]) -> tuple[list[Any], list[str], int]:
    """Every document with what inject added removed; (documents, notes, workloads changed)."""
    notes: list[str] = []
    count = 0

    def act(obj: dict[str, Any]) -> None:
        nonlocal count
        workload = _workload(obj)
        if remove(workload):
            count += 1
            return
        spec = workload.spec
        if any(c.get("name") == CONTAINER for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])):
            notes.append(f"{workload.what}: its {CONTAINER} container was not added by inject (no {ANNOTATION}); left")

    _visit(documents, act)
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


def _write(documents: list[Any], notes: list[str]) -> None:
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False))
    for note in notes:
        sys.stderr.write(note + "\n" if note.startswith("WARNING") else f"note: {note}\n")


FileOption = Annotated[str, typer.Option("--file", "-f", metavar="FILE", help="Kubernetes YAML to read ('-': stdin).")]


def inject(
    file: FileOption,
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
        f"{IMAGE_REPOSITORY}:{__version__}"
    ),
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, metavar="PORT", help="The sidecar's port in the pod.")
    ] = 8080,
    allow_host_network: Annotated[
        bool,
        typer.Option(
            "--allow-host-network",
            help="Inject into hostNetwork pods too (the sidecar's port is then open on every node; refused without).",
        ),
    ] = False,
) -> Exit:
    """Add the sidecar to the workloads in FILE and write them to stdout (a second run changes nothing).

    \b
    Example:
      fasterdb-admin inject -f deployment.yaml | kubectl apply -f -
    """
    documents = _parse(_read(file), file)
    sidecar = Sidecar("native" if mode is InjectMode.native else "container", secret, image, port)
    documents, notes, count = inject_documents(documents, sidecar, allow_host_network=allow_host_network)
    _write(documents, notes)
    if count == 0:
        sys.stderr.write(f"note: no {KINDS_TEXT} found; nothing injected\n")
    return Exit.OK


def uninject(file: FileOption) -> Exit:
    """Remove what inject added from the workloads in FILE and write them to stdout (a second run changes nothing).

    \b
    Example:
      kubectl get deploy shop -o yaml | fasterdb-admin uninject -f - | kubectl apply -f -
    """
    documents, notes, count = uninject_documents(_parse(_read(file), file))
    _write(documents, notes)
    if count == 0:
        sys.stderr.write(f"note: no workload has the {ANNOTATION} annotation; nothing removed\n")
    return Exit.OK
