#!/usr/bin/env bash
# Builds the real components the cluster tier runs, from their Go modules (versions in
# test/cluster/components.env), and caches them outside the checkout so a fresh clone finds them
# again: $SERVO_COMPONENTS, or ${XDG_CACHE_HOME:-$HOME/.cache}/servo-k8s-multijob/<name>-<version>/.
#   - kube-apiserver, kube-controller-manager, kube-scheduler of the newest Kubernetes release and of
#     the oldest minor the README claims: `go install k8s.io/kubernetes/cmd/...` is refused (its go.mod
#     replaces every staging module with ./staging/...), so a wrapper module takes the tag's own `go`
#     and `godebug` lines and turns each staging replace into the matching v0.MINOR.PATCH release;
#     the version is stamped with -X (or /version says v0.0.0-master); kubectl of the newest release
#     the same way (the README's upgrade and removal lines run with it);
#   - etcd 3.6 (a wrapper main calling etcdmain.Main: its own main module carries replaces);
#   - kwok (plays every kubelet), Knative's ApiServerSource receive adapter and the CloudEvents
#     conformance tool, as `go install` would build them;
#   - the CRDs of Knative Serving and Eventing, cert-manager and prometheus-operator: the modules'
#     own YAML, left where `go mod download` puts it;
#   - Prometheus and promtool from Debian's prometheus package.
# Prints one `name=PATH version` line per binary and `name-crds=DIR` per CRD folder.
# Needs Go (1.26) and, for Prometheus, apt (as root). Cold: see docs/development.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=components.env
. "$here/components.env"
root=${SERVO_COMPONENTS:-${XDG_CACHE_HOME:-$HOME/.cache}/servo-k8s-multijob}
mkdir -p "$root"
# One install at a time per cache (a second waits rather than building the same thing twice).
exec 9>"$root/.lock"
flock 9

command -v go >/dev/null || { echo "install.sh needs Go (1.26): https://go.dev/doc/install" >&2; exit 1; }
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

log() { echo "$*" >&2; }
timed() { # timed NAME COMMAND...: runs it, logging how long a build took
  local name=$1 start=$SECONDS
  shift
  "$@"
  log "built $name in $((SECONDS - start)) s"
}

module_dir() { go mod download -json "$1" | sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p'; }
module_gomod() { go mod download -json "$1" | sed -nE 's/^[[:space:]]*"GoMod": "(.*)",?$/\1/p'; }

# build_kubernetes VERSION DIR [COMMAND...]: the control plane's commands, or those named
build_kubernetes() {
  local ver=$1 out=$2 minor patch gomod work
  shift 2
  minor=$(echo "$ver" | cut -d. -f2) patch=$(echo "$ver" | cut -d. -f3)
  gomod=$(module_gomod "k8s.io/kubernetes@$ver")
  work=$(mktemp -d)
  {
    echo "module servo-k8s-multijob/kubernetes"
    grep -E '^(go|godebug) ' "$gomod"
    echo "require k8s.io/kubernetes $ver"
    sed -nE "s#^[[:space:]]*(k8s\.io/[^ ]+) => \./staging/.*#replace \1 => \1 v0.$minor.$patch#p" "$gomod"
  } > "$work/go.mod"
  local cmds="${*:-k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler}"
  local v=k8s.io/component-base/version
  # Each command at the tag (a bare `go get PACKAGE` would move k8s.io/kubernetes to the newest release).
  (cd "$work" && go get $(printf "%s@$ver " $cmds) >/dev/null 2>"$work/get.log" || { cat "$work/get.log" >&2; exit 1; }
   rm -rf "$out.tmp" && go build -ldflags "-s -w -X $v.gitVersion=$ver -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" -o "$out.tmp/" $cmds)
  rm -rf "$work" "$out" && mv "$out.tmp" "$out"
}

build_etcd() {
  local out=$1 work
  work=$(mktemp -d)
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > "$work/main.go"
  (cd "$work" && go mod init servo-k8s-multijob/etcd >/dev/null 2>&1 && go get "go.etcd.io/etcd/server/v3@$ETCD" >/dev/null 2>"$work/get.log" || { cat "$work/get.log" >&2; exit 1; }
   rm -rf "$out.tmp" && mkdir -p "$out.tmp" && go build -ldflags "-s -w" -o "$out.tmp/etcd" .)
  rm -rf "$work" "$out" && mv "$out.tmp" "$out"
}

# go_build DIR PACKAGE VERSION: `go install PACKAGE@VERSION` in effect, through a wrapper module
# (go install also asks for the module's version list, which the proxy refuses for some modules;
# `go get` of the exact version does not need it). The versions are those of the module's go.mod.
go_build() {
  local out=$1 package=$2 ver=$3 work
  work=$(mktemp -d)
  (cd "$work" && go mod init servo-k8s-multijob/component >/dev/null 2>&1 && go get "$package@$ver" >/dev/null 2>"$work/get.log" || { cat "$work/get.log" >&2; exit 1; }
   rm -rf "$out.tmp" && mkdir -p "$out.tmp" && go build -ldflags "-s -w" -o "$out.tmp/" "$package")
  rm -rf "$work" "$out" && mv "$out.tmp" "$out"
}

kube_new="$root/kubernetes-$KUBERNETES_NEWEST"
kube_old="$root/kubernetes-$KUBERNETES_OLDEST"
kubectl_dir="$root/kubectl-$KUBERNETES_NEWEST"
etcd_dir="$root/etcd-$ETCD"
kwok_dir="$root/kwok-$KWOK"
adapter_dir="$root/knative-eventing-$KNATIVE_EVENTING"
conformance_dir="$root/cloudevents-conformance-$CLOUDEVENTS_CONFORMANCE"

[ -x "$etcd_dir/etcd" ] || timed etcd build_etcd "$etcd_dir"
[ -x "$kwok_dir/kwok" ] || timed kwok go_build "$kwok_dir" sigs.k8s.io/kwok/cmd/kwok "$KWOK"
[ -x "$adapter_dir/apiserver_receive_adapter" ] || timed apiserver_receive_adapter go_build "$adapter_dir" knative.dev/eventing/cmd/apiserver_receive_adapter "$KNATIVE_EVENTING"
[ -x "$conformance_dir/cloudevents" ] || timed cloudevents-conformance go_build "$conformance_dir" github.com/cloudevents/conformance/cmd/cloudevents "$CLOUDEVENTS_CONFORMANCE"
[ -x "$kube_new/kube-apiserver" ] || timed "kubernetes $KUBERNETES_NEWEST" build_kubernetes "$KUBERNETES_NEWEST" "$kube_new"
[ -x "$kube_old/kube-apiserver" ] || timed "kubernetes $KUBERNETES_OLDEST" build_kubernetes "$KUBERNETES_OLDEST" "$kube_old"
[ -x "$kubectl_dir/kubectl" ] || timed "kubectl $KUBERNETES_NEWEST" build_kubernetes "$KUBERNETES_NEWEST" "$kubectl_dir" k8s.io/kubernetes/cmd/kubectl

crds_knative_serving="$(module_dir "knative.dev/serving@$KNATIVE_SERVING")/config/core/300-resources"
crds_knative_eventing="$(module_dir "knative.dev/eventing@$KNATIVE_EVENTING")/config/core/resources"
crds_cert_manager="$(module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER")/deploy/crds"
crds_prometheus_operator="$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR")/example/prometheus-operator-crd"
kwok_stages="$(module_dir "sigs.k8s.io/kwok@$KWOK")/kustomize/stage/node"

# Prometheus and promtool: Debian's package. Debian starts it as a service when it installs it;
# the tests start their own on free ports, so stop the package's unit (and only that).
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then systemctl stop prometheus prometheus-node-exporter 2>/dev/null || true; fi
  if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
  if [ -x /etc/init.d/prometheus-node-exporter ]; then /etc/init.d/prometheus-node-exporter stop >/dev/null 2>&1 || true; fi
fi

version_of() { "$@" 2>&1 | head -1; }
echo "kube-apiserver=$kube_new/kube-apiserver $(version_of "$kube_new/kube-apiserver" --version)"
echo "kube-controller-manager=$kube_new/kube-controller-manager $(version_of "$kube_new/kube-controller-manager" --version)"
echo "kube-scheduler=$kube_new/kube-scheduler $(version_of "$kube_new/kube-scheduler" --version)"
echo "kube-apiserver-oldest=$kube_old/kube-apiserver $(version_of "$kube_old/kube-apiserver" --version)"
echo "kube-controller-manager-oldest=$kube_old/kube-controller-manager $(version_of "$kube_old/kube-controller-manager" --version)"
echo "kube-scheduler-oldest=$kube_old/kube-scheduler $(version_of "$kube_old/kube-scheduler" --version)"
echo "kubectl=$kubectl_dir/kubectl $(version_of "$kubectl_dir/kubectl" version --client)"
echo "etcd=$etcd_dir/etcd $(version_of "$etcd_dir/etcd" --version)"
echo "kwok=$kwok_dir/kwok $(version_of "$kwok_dir/kwok" --version)"
echo "apiserver_receive_adapter=$adapter_dir/apiserver_receive_adapter knative.dev/eventing $KNATIVE_EVENTING"
echo "cloudevents=$conformance_dir/cloudevents github.com/cloudevents/conformance $CLOUDEVENTS_CONFORMANCE"
echo "prometheus=$(command -v prometheus) $(version_of prometheus --version)"
echo "promtool=$(command -v promtool) $(version_of promtool --version)"
echo "knative-serving-crds=$crds_knative_serving"
echo "knative-eventing-crds=$crds_knative_eventing"
echo "cert-manager-crds=$crds_cert_manager"
echo "prometheus-operator-crds=$crds_prometheus_operator"
echo "kwok-node-stages=$kwok_stages"
