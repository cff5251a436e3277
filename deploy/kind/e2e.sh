#!/usr/bin/env bash
# End-to-end test on a kind cluster: build the image, load it, install PostgreSQL (primary +
# replica), the chart standalone (with its Role and NetworkPolicy) and the example application
# chart (native sidecar), then run tests/e2e with pytest. Needs docker, kind, helm and kubectl.
# The CLI runs as a ServiceAccount bound only to the chart's Role, as an operator would.
# Usage: deploy/kind/e2e.sh [--keep]   (--keep leaves the cluster running afterwards)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cluster=fasterdb-e2e
namespace=fasterdb-e2e
image_repo=fasterdb-sidecar
image_tag=e2e
cli_account=fasterdb-cli
cli_context=fasterdb-e2e-cli
keep=false
[ "${1:-}" = "--keep" ] && keep=true

for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "e2e: $tool is required" >&2; exit 1; }
done

dump_logs() {
  echo "::group::cluster state and logs" >&2
  kubectl -n "$namespace" get all,networkpolicy,pvc -o wide >&2 || true
  kubectl -n "$namespace" describe pods >&2 || true
  kubectl -n "$namespace" logs -l app.kubernetes.io/name=fasterdb-sidecar --all-containers --tail=200 >&2 || true
  kubectl -n "$namespace" logs -l app.kubernetes.io/name=example-app --all-containers --tail=200 >&2 || true
  kubectl -n "$namespace" logs -l app=pg-primary --tail=100 >&2 || true
  kubectl -n "$namespace" logs -l app=pg-replica --tail=100 >&2 || true
  echo "::endgroup::" >&2
}

cleanup() {
  status=$?
  [ "$status" -ne 0 ] && dump_logs
  kubectl config delete-context "$cli_context" >/dev/null 2>&1 || true
  kubectl config delete-user "$cli_context" >/dev/null 2>&1 || true
  if [ "$keep" = false ]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
  exit "$status"
}
trap cleanup EXIT

kind get clusters | grep -qx "$cluster" || kind create cluster --config "$root/deploy/kind/cluster.yaml" --wait 120s
kubectl config use-context "kind-$cluster"
docker build -f "$root/deploy/Dockerfile" -t "$image_repo:$image_tag" "$root"
kind load docker-image "$image_repo:$image_tag" --name "$cluster"

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$namespace" apply -f "$root/deploy/kind/postgres.yaml"
kubectl -n "$namespace" rollout status statefulset/pg-primary --timeout=180s
kubectl -n "$namespace" rollout status statefulset/pg-replica --timeout=180s

# Where the API server's pod proxy connects from (for the NetworkPolicy): the node's network and,
# for a pod on the same node, the node's gateway address on the pod network.
node_subnet=$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' | tr ' ' '\n' | grep -v ':' | grep . | head -n 1)
pod_cidr=$(kubectl get nodes -o jsonpath='{.items[0].spec.podCIDR}')
pod_gateway="${pod_cidr%.*}.1/32"

kubectl -n "$namespace" create serviceaccount "$cli_account" --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install e2e "$root/helm/fasterdb-sidecar" -n "$namespace" \
  --set image.repository="$image_repo" --set image.tag="$image_tag" --set image.pullPolicy=Never \
  --set database.existingSecret=fasterdb-db --set rbac.create=true \
  --set "rbac.subjects[0].kind=ServiceAccount" --set "rbac.subjects[0].name=$cli_account" \
  --set "rbac.subjects[0].namespace=$namespace" \
  --set networkPolicy.enabled=true --set "networkPolicy.apiServerCidrs={$node_subnet,$pod_gateway}" \
  --wait --timeout 180s
helm test e2e -n "$namespace" --timeout 120s

# The example application chart: its Deployment gets a native sidecar. The application is a
# static HTTP server from the sidecar image itself, so nothing is pulled from a registry.
helm dependency build "$root/deploy/examples/app-chart"
helm upgrade --install shop "$root/deploy/examples/app-chart" -n "$namespace" \
  --set image.repository="$image_repo" --set image.tag="$image_tag" --set image.pullPolicy=Never \
  --set fasterdb-sidecar.image.repository="$image_repo" --set fasterdb-sidecar.image.tag="$image_tag" \
  --set fasterdb-sidecar.image.pullPolicy=Never --set fasterdb-sidecar.sidecar.mode=native \
  --set fasterdb-sidecar.database.existingSecret=fasterdb-db \
  --wait --timeout 180s

# The CLI's identity for the tests: the ServiceAccount's token, nothing but the chart's Role.
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
token=$(kubectl -n "$namespace" create token "$cli_account" --duration=1h)
kubectl config set-credentials "$cli_context" --token="$token" >/dev/null
kubectl config set-context "$cli_context" --cluster="kind-$cluster" --user="$cli_context" \
  --namespace="$namespace" >/dev/null
echo "e2e: the CLI runs as system:serviceaccount:$namespace:$cli_account against $server" >&2

FASTERDB_E2E_NAMESPACE="$namespace" FASTERDB_E2E_CONTEXT="kind-$cluster" \
  FASTERDB_E2E_CLI_CONTEXT="$cli_context" FASTERDB_E2E_CLI_ACCOUNT="$cli_account" \
  "$root/.venv/bin/python" -m pytest -m e2e "$root/tests/e2e" -v
