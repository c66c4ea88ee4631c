#!/usr/bin/env bash
# Builds (once) and caches every binary the test infrastructure needs:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd  (Kubernetes module)
#   helm                                                                    (Helm v3 module)
#   minio                                                                   (MinIO module)
#   Apache Kafka broker + tools jars (Maven Central; install-kafka.sh)
#   Apache Flink DataStream runtime jars, the test oracle (Maven Central; install-flink.sh)
#   Apache ActiveMQ Classic broker jars (Maven Central; install-activemq.sh)
#   Apache Hadoop HDFS mini-cluster jars (Maven Central; install-hadoop.sh)
#   OpenSearch node jars with its transport-netty4 module (Maven Central; install-opensearch.sh)
#   Apache Cassandra server jars (Maven Central; install-cassandra.sh)
#   kinesalite, the Kinesis Data Streams server of the Kinesis tests (npm; install-kinesalite.sh)
# from their Go modules through the Go module proxy, into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/bin/<tool>-<version>/<tool>
# A second run finds every binary in place and returns in well under a second.
#
# Environment:
#   FJORD_CACHE       cache root (default $HOME/.cache/fjord)
#   FJORD_GO_PARALLEL go build -p value (default 2; other builds share the machine)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

cache="$(fjord_cache)"
build_root="$cache/build"
mkdir -p "$cache/bin" "$build_root"

# One install at a time per cache (two test runs starting together would build into the same
# directories); the second waits and then finds everything cached.
exec 9>"$cache/install.lock"
if ! flock -n 9; then
  echo "[install] another install.sh is running on $cache; waiting for it" >&2
  flock 9
fi

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || { echo "install.sh: '$1' is required but not found. $2" >&2; exit 1; }
}

# --- OS packages (only what is missing) --------------------------------------------------
missing_pkgs=()
command -v openssl >/dev/null 2>&1 || missing_pkgs+=(openssl)
command -v curl >/dev/null 2>&1 || missing_pkgs+=(curl)
if ((${#missing_pkgs[@]})); then
  log "installing Debian packages: ${missing_pkgs[*]}"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_pkgs[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_pkgs[@]}"
  fi
fi
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
need_cmd go "Install Go >= 1.24 (the Go toolchain builds the infrastructure from its Go modules)."

export CGO_ENABLED=0
export GOFLAGS="-p=${FJORD_GO_PARALLEL:-2} -buildvcs=false -trimpath"
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"

# all_present DIR NAME... : true when every named binary exists in DIR.
all_present() {
  local dir=$1; shift
  local n
  for n in "$@"; do [[ -x "$dir/$n" ]] || return 1; done
}

# new_build_module DIR MODULE VERSION : a throwaway module that requires MODULE@VERSION.
new_build_module() {
  local dir=$1 module=$2 version=$3
  rm -rf "$dir"; mkdir -p "$dir"
  cat >"$dir/go.mod" <<GOMOD
module fjord.invalid/infra-build

go 1.24

require $module $version
GOMOD
}

# --- Kubernetes control plane, kubectl and etcd -------------------------------------------
build_kubernetes() {
  local v=$KUBERNETES_VERSION
  local api="$cache/bin/kube-apiserver-$v" cm="$cache/bin/kube-controller-manager-$v"
  local sch="$cache/bin/kube-scheduler-$v" kctl="$cache/bin/kubectl-$v" etcd="$cache/bin/etcd-$ETCD_BUILD_TAG"
  if all_present "$api" kube-apiserver && all_present "$cm" kube-controller-manager &&
     all_present "$sch" kube-scheduler && all_present "$kctl" kubectl && all_present "$etcd" etcd; then
    log "kubernetes $v: cached"
    return
  fi
  local t0=$SECONDS
  local dir="$build_root/kubernetes-$v"
  log "kubernetes $v: preparing build module in $dir"
  new_build_module "$dir" k8s.io/kubernetes "$v"
  # k8s.io/kubernetes points its staging modules (k8s.io/api, client-go, ...) at ./staging with
  # replace directives, which `go install pkg@version` refuses. Replace each of them with its
  # published v0.Y.Z twin instead.
  local gomod staging minor
  gomod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || { echo "install.sh: could not download the go.mod of k8s.io/kubernetes@$v" >&2; exit 1; }
  minor="${v#v1.}"                      # 35.4
  staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod")"
  [[ -n "$staging" ]] || { echo "install.sh: found no staging replace directives in $gomod" >&2; exit 1; }
  {
    echo
    echo "replace ("
    local m; for m in $staging; do echo "	$m => $m v0.$minor"; done
    echo ")"
  } >>"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "kubernetes $v: resolving modules (go mod tidy)"
  (cd "$dir" && go mod tidy)
  local etcd_ver
  etcd_ver="$(cd "$dir" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
  local ld="-s -w"
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=${minor%%.*}"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$dir/out"
  log "kubernetes $v: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd $etcd_ver"
  (cd "$dir" && go build -ldflags "$ld" -o out/ \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  (cd "$dir" && go build -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3)
  mkdir -p "$api" "$cm" "$sch" "$kctl" "$etcd"
  install -m 0755 "$dir/out/kube-apiserver" "$api/kube-apiserver"
  install -m 0755 "$dir/out/kube-controller-manager" "$cm/kube-controller-manager"
  install -m 0755 "$dir/out/kube-scheduler" "$sch/kube-scheduler"
  install -m 0755 "$dir/out/kubectl" "$kctl/kubectl"
  install -m 0755 "$dir/out/etcd" "$etcd/etcd"
  echo "$etcd_ver" >"$etcd/VERSION"
  rm -rf "$dir/out"
  log "kubernetes $v: built in $((SECONDS - t0)) s"
}

# --- Helm ------------------------------------------------------------------------------------
build_helm() {
  local v=$HELM_VERSION out="$cache/bin/helm-$HELM_VERSION"
  if all_present "$out" helm; then log "helm $v: cached"; return; fi
  local t0=$SECONDS dir="$build_root/helm-$v"
  new_build_module "$dir" helm.sh/helm/v3 "$v"
  printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >"$dir/tools.go"
  log "helm $v: resolving modules"
  (cd "$dir" && go mod tidy)
  log "helm $v: building"
  mkdir -p "$out"
  (cd "$dir" && go build -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
      -o "$out/helm" helm.sh/helm/v3/cmd/helm)
  log "helm $v: built in $((SECONDS - t0)) s"
}

# --- MinIO -----------------------------------------------------------------------------------
build_minio() {
  local v=$MINIO_VERSION out="$cache/bin/minio-$MINIO_VERSION"
  if all_present "$out" minio; then log "minio $v: cached"; return; fi
  local t0=$SECONDS dir="$build_root/minio-$v"
  new_build_module "$dir" github.com/minio/minio "$v"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/minio/minio"\n' >"$dir/tools.go"
  log "minio $v: resolving modules"
  (cd "$dir" && go mod tidy)
  log "minio $v: building"
  mkdir -p "$out"
  (cd "$dir" && go build -ldflags "-s -w" -o "$out/minio" github.com/minio/minio)
  log "minio $v: built in $((SECONDS - t0)) s"
}

t_all=$SECONDS
build_kubernetes
build_helm
build_minio
"$here/install-kafka.sh"
"$here/install-flink.sh"
"$here/install-activemq.sh"
"$here/install-hadoop.sh"
"$here/install-opensearch.sh"
"$here/install-cassandra.sh"
"$here/install-kinesalite.sh"
log "all infrastructure binaries present under $cache ($((SECONDS - t_all)) s)"
