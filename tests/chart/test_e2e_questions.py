"""The e2e test's ``kubectl auth can-i`` questions, asked with the real kubectl of a stand-in API server.

The stand-in serves discovery and answers each SelfSubjectAccessReview from the chart's rendered
Role, as Kubernetes' RBAC authorizer would for a subject bound only to it. So what tests/e2e
expects can be checked here, and a question kubectl reads differently than meant (``pods/proxy``
is ``TYPE/NAME``: a pod named "proxy") fails here too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import find, render, scenario_values
from tests.e2e.rbac import CAN_I, can_i_args

RESOURCES = {
    "": ("v1", ["pods", "pods/proxy", "secrets"]),
    "apps": ("v1", ["deployments"]),
    "autoscaling": ("v2", ["horizontalpodautoscalers"]),
    "authorization.k8s.io": ("v1", ["selfsubjectaccessreviews"]),
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def resource_list(group: str) -> dict[str, Any]:
    version, names = RESOURCES[group]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            {"name": n, "singularName": "", "namespaced": True, "kind": n.split("/")[0].title(), "verbs": VERBS}
            for n in names
        ],
    }


def allowed_by(role: dict[str, Any], attributes: dict[str, Any]) -> bool:
    """RBAC: some rule matches the request's API group, resource[/subresource] and verb (no names here)."""
    resource = attributes["resource"] + (f"/{attributes['subresource']}" if attributes.get("subresource") else "")
    return not attributes.get("name") and any(
        attributes.get("group", "") in rule["apiGroups"]
        and resource in rule["resources"]
        and attributes["verb"] in rule["verbs"]
        for rule in role["rules"]
    )


def fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of one protobuf message (the only kind a review's attributes use)."""
    found, i = {}, 0

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        if key & 7 == 2:
            size = varint()
            found[key >> 3], i = data[i : i + size], i + size
        elif key & 7 == 0:
            varint()
        else:
            raise AssertionError(f"unexpected protobuf wire type {key & 7}")
    return found


def review_attributes(body: bytes) -> dict[str, str]:
    """spec.resourceAttributes of a SelfSubjectAccessReview in Kubernetes' protobuf envelope."""
    assert body.startswith(b"k8s\x00")
    review = fields(fields(body[4:])[2])  # runtime.Unknown: 2 = raw object
    attributes = fields(fields(review[2])[1])  # SelfSubjectAccessReview: 2 = spec; spec: 1 = resourceAttributes
    names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
    return {names[k]: v.decode() for k, v in attributes.items() if k in names and v}


class StandIn(ThreadingHTTPServer):
    """The API server as kubectl auth can-i meets it."""

    def __init__(self, role: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.role = role
        self.reviews: list[dict[str, Any]] = []


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        path = self.path.split("?")[0]
        if path == "/api":
            self.reply({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        elif path == "/apis":
            groups = [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for g, (v, _) in RESOURCES.items()
                if g
            ]
            self.reply({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif path == "/api/v1":
            self.reply(resource_list(""))
        elif path.startswith("/apis/") and path.count("/") == 3 and path.split("/")[2] in RESOURCES:
            self.reply(resource_list(path.split("/")[2]))
        else:
            self.reply({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}, 404)

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
            attributes = review_attributes(body)
        else:
            attributes = json.loads(body)["spec"]["resourceAttributes"]
        self.server.reviews.append({**attributes, "as": self.headers.get("Impersonate-User")})
        status = {"allowed": allowed_by(self.server.role, attributes)}
        review = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "status": status}
        self.reply({**review, "spec": {"resourceAttributes": attributes}}, 201)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    role = find(render(scenario_values("full")), "Role")
    server = StandIn(role)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_kubectl_asks_what_the_e2e_means_and_the_role_answers_as_expected(stand_in: StandIn, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is part of this machine's image (and of GitHub's runners)"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{stand_in.server_port}"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "e2e"}}],
                "current-context": "x",
            }
        )
    )
    who = "system:serviceaccount:e2e:fasterdb-cli"
    for (verb, resource, subresource), expected in CAN_I.items():
        result = subprocess.run(
            [kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache")]
            + can_i_args(verb, resource, subresource, who),
            capture_output=True,
            text=True,
            timeout=60,
        )
        review = stand_in.reviews[-1]
        group = resource.partition(".")[2]
        assert (review["verb"], review.get("group", ""), review["resource"]) == (
            verb,
            group,
            resource.partition(".")[0],
        )
        assert review.get("subresource", "") == subresource and not review.get("name"), review
        assert review["as"] == who and review["namespace"] == "e2e"
        assert result.stdout.strip() == expected, (verb, resource, subresource, result.stdout, result.stderr)
    assert len(stand_in.reviews) == len(CAN_I)
