#!/usr/bin/env bash
# End-to-end test on a kind cluster: build the image, load it, install PostgreSQL (primary +
# replica) and the chart, then run tests/e2e with pytest. Needs docker, kind, helm and kubectl.
# Usage: deploy/kind/e2e.sh [--keep]   (--keep leaves the cluster running afterwards)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cluster=fasterdb-e2e
namespace=fasterdb-e2e
image=fasterdb-sidecar:e2e
keep=false
[ "${1:-}" = "--keep" ] && keep=true

for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "e2e: $tool is required" >&2; exit 1; }
done

dump_logs() {
  echo "::group::cluster state and logs" >&2
  kubectl -n "$namespace" get all -o wide >&2 || true
  kubectl -n "$namespace" describe pods >&2 || true
  kubectl -n "$namespace" logs -l app.kubernetes.io/name=fasterdb-sidecar --all-containers --tail=200 >&2 || true
  kubectl -n "$namespace" logs -l app=pg-primary --tail=100 >&2 || true
  kubectl -n "$namespace" logs -l app=pg-replica --tail=100 >&2 || true
  echo "::endgroup::" >&2
}

cleanup() {
  status=$?
  [ "$status" -ne 0 ] && dump_logs
  if [ "$keep" = false ]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
  exit "$status"
}
trap cleanup EXIT

kind get clusters | grep -qx "$cluster" || kind create cluster --config "$root/deploy/kind/cluster.yaml" --wait 120s
kubectl config use-context "kind-$cluster"
docker build -f "$root/deploy/Dockerfile" -t "$image" "$root"
kind load docker-image "$image" --name "$cluster"

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$namespace" apply -f "$root/deploy/kind/postgres.yaml"
kubectl -n "$namespace" rollout status statefulset/pg-primary --timeout=180s
kubectl -n "$namespace" rollout status statefulset/pg-replica --timeout=180s

helm upgrade --install e2e "$root/helm/fasterdb-sidecar" -n "$namespace" \
  --set image.repository=fasterdb-sidecar --set image.tag=e2e --set image.pullPolicy=Never \
  --set database.existingSecret=fasterdb-db --set rbac.create=true \
  --set "rbac.subjects[0].kind=User" --set "rbac.subjects[0].name=kubernetes-admin" \
  --set "rbac.subjects[0].apiGroup=rbac.authorization.k8s.io" \
  --wait --timeout 180s
helm test e2e -n "$namespace" --timeout 120s

FASTERDB_E2E_NAMESPACE="$namespace" FASTERDB_E2E_CONTEXT="kind-$cluster" \
  "$root/.venv/bin/python" -m pytest -m e2e "$root/tests/e2e" -v
