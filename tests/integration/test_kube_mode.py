"""``--kube`` aggregation and exit codes, without a cluster: the pods are real sidecars on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.cluster import free_port
from devtools.hot_standby import HotStandbyCluster
from fasterdb_admin.check import ask_pods, pods_line, report_pods
from fasterdb_admin.client import CliError, SidecarClient
from fasterdb_admin.commands import health as health_cmd
from fasterdb_admin.commands import pools as pools_cmd
from fasterdb_admin.commands import replicas as replicas_cmd
from fasterdb_admin.exitcodes import Exit, worst
from fasterdb_admin.kube import _context_namespace, pod_proxy_client
from tests.harness import SidecarProcess, run_cli, wait_for


def clients(**urls: str) -> dict[str, SidecarClient]:
    return {pod: SidecarClient(url, None, 2.0) for pod, url in urls.items()}


def test_one_row_per_pod_and_the_worst_exit(
    sidecar: SidecarProcess, pg: HotStandbyCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    pods = clients(**{"sidecar-a": sidecar.url, "sidecar-b": sidecar.url})
    results = ask_pods(pods, health_cmd.fetch_health)
    assert [(r.pod, r.code) for r in results] == [("sidecar-a", Exit.OK), ("sidecar-b", Exit.OK)]
    assert report_pods(health_cmd.SERVICE, results, "json") == Exit.OK
    out = json.loads(capsys.readouterr().out)
    assert [p["exit"] for p in out["pods"]] == ["OK", "OK"]
    assert out["pods"][0]["result"]["primary"]["ok"] is True

    gone = clients(**{"sidecar-a": sidecar.url, "sidecar-gone": f"http://127.0.0.1:{free_port()}"})
    results = ask_pods(gone, health_cmd.fetch_health)
    assert worst([r.code for r in results]) == Exit.UNKNOWN
    assert results[1].code == Exit.UNKNOWN and "cannot reach" in str(results[1].error)

    assert report_pods(health_cmd.SERVICE, results, "table") == Exit.UNKNOWN
    table = capsys.readouterr().out
    assert "pod sidecar-a: OK" in table and "pod sidecar-gone: UNKNOWN" in table

    pg.stop_node(pg.primary)
    # a definite CRITICAL outranks the unreachable pod's UNKNOWN
    wait_for(lambda: worst([r.code for r in ask_pods(gone, health_cmd.fetch_health)]) == Exit.CRITICAL, what="CRITICAL")


def test_replicas_and_pools_across_pods(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    pods = clients(**{"a": sidecar.url, "b": sidecar.url})
    results = ask_pods(pods, lambda c: replicas_cmd.fetch(c, replicas_cmd.Limits()))
    assert worst([r.code for r in results]) == Exit.OK
    line = pods_line(replicas_cmd.SERVICE, results)
    assert line.startswith("REPLICAS OK - a: replica-1 streaming") and "'a/replica-1_lag_bytes'=0B;" in line
    assert "'b/replica-1_lag_seconds'=" in line and len(line.splitlines()) == 1

    pg.stop_node(pg.replica_nodes[0])
    results = wait_for(
        lambda: (r := ask_pods(pods, pools_cmd.fetch)) and worst([p.code for p in r]) == Exit.WARNING and r,
        what="a replica pool not ready: WARNING",
    )
    assert all(r.verdict is not None and r.verdict.body.pools[1].ready is False for r in results)


def test_pod_proxy_client_speaks_the_api_servers_proxy_path(sidecar: SidecarProcess) -> None:
    """The real --kube transport against a stand-in API server that proxies like kube-apiserver."""
    import http.server
    import threading
    import urllib.request

    from kubernetes import client as kclient

    seen: list[tuple[str, str | None]] = []
    prefix = "/api/v1/namespaces/apps/pods/sidecar-0:8080/proxy"

    class ApiServer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append((self.path, self.headers.get("authorization")))
            if not self.path.startswith(prefix) or self.headers.get("authorization") != "Bearer sa-token":
                self.send_response(403)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"kind": "Status", "message": "pods \\"sidecar-0\\" is forbidden"}')
                return
            try:
                upstream = urllib.request.urlopen(sidecar.url + self.path[len(prefix) :], timeout=5)
                status, body = upstream.status, upstream.read()
            except urllib.error.HTTPError as exc:  # 503 passes through like the real proxy
                status, body = exc.code, exc.read()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configuration = kclient.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
        configuration.api_key = {"authorization": "sa-token"}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        proxied = pod_proxy_client(configuration, "apps", "sidecar-0", 8080, 5.0)
        check = health_cmd.fetch_health(proxied)
        assert check.code == Exit.OK and check.body.primary.ok is True
        assert seen[-1] == (prefix + "/health/db?replicas=true", "Bearer sa-token")

        configuration.api_key = {"authorization": "wrong"}
        refused = pod_proxy_client(configuration, "apps", "sidecar-0", 8080, 5.0)
        with pytest.raises(CliError) as info:
            health_cmd.fetch_health(refused)
        assert "forbidden" in info.value.message and info.value.code == Exit.UNKNOWN
    finally:
        server.shutdown()
    contexts = (
        [{"name": "a", "context": {"namespace": "team-a"}}, {"name": "b", "context": {}}],
        {"name": "b", "context": {}},
    )
    assert _context_namespace(contexts, "a") == "team-a"
    assert _context_namespace(contexts, None) == "default"


class TlsApiServer:
    """A stand-in kube-apiserver on TLS that authenticates by client certificate, as kind's does.

    It lists pods (a native-sidecar pod, a pod without the sidecar, a pending one) and proxies
    ``/pods/<pod>:<port>/proxy/...`` to the real sidecar; a request without a client certificate
    is ``system:anonymous`` and gets the API server's 403.
    """

    def __init__(self, sidecar_url: str) -> None:
        import http.server
        import ssl
        import threading
        import urllib.request

        import trustme

        self.ca = trustme.CA()
        self.server_cert = self.ca.issue_cert("127.0.0.1")
        self.client_cert = self.ca.issue_cert(
            "kubernetes-admin", common_name="kubernetes-admin", organization_name="system:masters"
        )
        self.users: list[str] = []
        users = self.users
        pods = {
            "apiVersion": "v1",
            "kind": "PodList",
            "metadata": {},
            "items": [
                _pod("shop-7d9-abc", "Running", native=True),
                _pod("no-sidecar", "Running", native=None),
                _pod("shop-7d9-pending", "Pending", native=True),
            ],
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                cert = self.connection.getpeercert()  # type: ignore[attr-defined]
                user = dict(x[0] for x in cert["subject"])["commonName"] if cert else "system:anonymous"
                users.append(user)
                if user == "system:anonymous":
                    return self.reply(403, {"kind": "Status", "message": 'pods is forbidden: User "system:anonymous"'})
                path = self.path
                if path.startswith("/api/v1/namespaces/apps/pods?"):
                    return self.reply(200, pods)
                if path.startswith("/apis/apps/v1/namespaces/apps/deployments/shop"):
                    return self.reply(200, DEPLOYMENT)
                if path.startswith("/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers"):
                    return self.reply(200, HPAS)
                prefix = "/api/v1/namespaces/apps/pods/shop-7d9-abc:8080/proxy"
                if not path.startswith(prefix):
                    return self.reply(404, {"kind": "Status", "message": "not found"})
                try:
                    upstream = urllib.request.urlopen(sidecar_url + path[len(prefix) :], timeout=5)
                except urllib.error.HTTPError as exc:
                    return self.reply(exc.code, exc.read())
                if upstream.headers.get("content-type", "").startswith("text/event-stream"):
                    return self.relay(upstream)
                self.reply(upstream.status, upstream.read())

            def relay(self, upstream: Any) -> None:
                """A stream passed on as it comes, like the API server's proxy (the body ends at close)."""
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                try:
                    while line := upstream.readline():
                        self.wfile.write(line)
                        self.wfile.flush()
                except OSError:  # the client went away
                    pass
                finally:
                    upstream.close()

            def reply(self, status: int, body: object) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        self.ca.configure_trust(context)
        context.verify_mode = ssl.CERT_OPTIONAL  # like kube-apiserver: no certificate = anonymous
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self, path: Path, *, client_cert: bool = True) -> Path:
        """A kubeconfig for this server with the CA and (optionally) the admin's client certificate."""
        import base64

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        user: dict[str, str] = {}
        if client_cert:
            user = {
                "client-certificate-data": b64(self.client_cert.cert_chain_pems[0].bytes()),
                "client-key-data": b64(self.client_cert.private_key_pem.bytes()),
            }
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "standin",
                    "cluster": {"server": self.url, "certificate-authority-data": b64(self.ca.cert_pem.bytes())},
                }
            ],
            "users": [{"name": "admin", "user": user}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "admin", "namespace": "apps"}}],
            "current-context": "standin",
        }
        path.write_text(json.dumps(config))
        return path

    def close(self) -> None:
        self.httpd.shutdown()


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "shop", "namespace": "apps"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "shop"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "a", "image": "b"}]}},
    },
}
HPAS = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscalerList",
    "metadata": {},
    "items": [
        {
            "metadata": {"name": "other", "namespace": "apps"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "other"}, "maxReplicas": 50},
        },
        {
            "metadata": {"name": "shop", "namespace": "apps"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
                "maxReplicas": 6,
            },
        },
    ],
}


def _pod(name: str, phase: str, *, native: bool | None) -> dict[str, Any]:
    sidecar = {
        "name": "fasterdb-sidecar",
        "image": "fasterdb-sidecar",
        "ports": [{"name": "fasterdb-http", "containerPort": 8080}],
    }
    app = {"name": "app", "image": "shop", "ports": [{"name": "http", "containerPort": 9000}]}
    spec: dict[str, object] = {"containers": [app]}
    status: dict[str, object] = {"phase": phase}
    if native:
        spec["initContainers"] = [dict(sidecar, restartPolicy="Always")]
        ready = phase == "Running"
        status["initContainerStatuses"] = [
            {"name": "fasterdb-sidecar", "ready": ready, "image": "x", "imageID": "", "restartCount": 0}
        ]
    return {"metadata": {"name": name, "namespace": "apps"}, "spec": spec, "status": status}


ApiServer = tuple[TlsApiServer, dict[str, str]]


@pytest.fixture()
def api_server(sidecar: SidecarProcess, tmp_path: Path) -> Iterator[ApiServer]:
    """The stand-in API server in front of the sidecar, and the environment of a kubeconfig for it."""
    server = TlsApiServer(sidecar.url)
    try:
        yield server, {"KUBECONFIG": str(server.kubeconfig(tmp_path / "config"))}
    finally:
        server.close()


def test_kube_authenticates_with_the_kubeconfigs_client_certificate(api_server: ApiServer, tmp_path: Path) -> None:
    server, kubeconfig = api_server
    result = run_cli("health", "--kube", "-o", "json", env=kubeconfig)
    assert result.returncode == 0, (result.stdout, result.stderr)
    pods = json.loads(result.stdout)["pods"]
    # Only the running pod with a fasterdb-sidecar container (here a native sidecar) is asked.
    assert [p["pod"] for p in pods] == ["shop-7d9-abc"] and pods[0]["result"]["primary"]["ok"] is True
    assert set(server.users) == {"kubernetes-admin"}  # the pod-proxy requests too, not anonymous

    # Without a client certificate the same request is anonymous: one clear line, UNKNOWN.
    anonymous = str(server.kubeconfig(tmp_path / "anon", client_cert=False))
    result = run_cli("health", "--kube", "-o", "json", env={"KUBECONFIG": anonymous})
    assert result.returncode == 3 and "HTTP 403" in result.stderr and len(result.stderr.splitlines()) == 1


def test_budget_reads_the_deployment_its_surge_and_its_autoscaler(api_server: ApiServer) -> None:
    kubeconfig = api_server[1]
    result = run_cli("budget", "--kube", "--deployment", "shop", "-o", "json", env=kubeconfig)
    assert result.returncode in (0, 1, 2), result.stderr
    document = json.loads(result.stdout)
    # The HPA's maximum (6) beats the replicas (3); maxSurge 25 % of 6 rounds up to 2.
    assert (document["pods"], document["surge"]) == (6, 2)
    assert document["source"] == "Deployment shop: replicas 3, HPA max 6 (asked pod shop-7d9-abc)"
    assert document["fleet"] == 8 * document["per_pod"]
    usage = run_cli("budget", "--kube", "--pods", "3", "--deployment", "shop", env=kubeconfig)
    assert usage.returncode == 3 and "usage error" in usage.stderr


def test_a_check_across_pods_is_one_nagios_line(api_server: ApiServer) -> None:
    kubeconfig = api_server[1]
    result = run_cli("check-replicas", "--kube", "-o", "nagios", env=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("REPLICAS OK - shop-7d9-abc: replica-1 streaming lag 0 B/")
    assert "'shop-7d9-abc/replica-1_lag_bytes'=0B;" in result.stdout and len(result.stdout.splitlines()) == 1


def test_watch_with_kube_follows_one_ready_pod_and_says_which(api_server: ApiServer) -> None:
    kubeconfig = api_server[1]
    args = ["pool-stats", "--kube", "--watch", "--interval", "0.2", "--frames", "2", "-o", "json"]
    result = run_cli(*args, env=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["pools"][0]["name"] for line in result.stdout.splitlines()] == ["primary", "primary"]
    assert result.stderr == (
        "fasterdb-admin: --kube: asking pod shop-7d9-abc in namespace apps (ready; 1 sidecar pod found) "
        "through the API server's pod proxy\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["transfer", "--from", "1", "--to", "2", "--amount", "1.00"],
        ["jobs", "list"],
        ["db", "migrate"],
        ["accounts", "show", "1"],
    ],
)
def test_admin_commands_with_kube_say_how_to_reach_a_sidecar(api_server: ApiServer, command: list[str]) -> None:
    """The API server removes the Authorization header (the admin token) before it proxies to a pod."""
    kubeconfig = api_server[1]
    result = run_cli(*command, "--token", "t" * 20, "--kube", "--context", "standin", env=kubeconfig)
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr == (
        "fasterdb-admin: --kube cannot carry the admin token (the API server's pod proxy removes the "
        "Authorization header): run `kubectl --context standin -n apps port-forward pod/shop-7d9-abc 18080:8080` "
        "and use --url http://127.0.0.1:18080\n"
    )
