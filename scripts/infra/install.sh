#!/usr/bin/env bash
# Builds (once) and caches every binary the test infrastructure needs:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd  (Kubernetes module)
#   helm                                                                    (Helm v3 module)
#   minio                                                                   (MinIO module)
#   kubelet, kube-proxy (Kubernetes module), CNI plugins, CoreDNS, the pause image
#                                     (the real kubelet nodes of kubelet-node.sh)
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
# kubernetes_build_module DIR VERSION : a throwaway module requiring k8s.io/kubernetes@VERSION
# with its staging modules replaced by their published v0.Y.Z twins.
kubernetes_build_module() {
  local dir=$1 v=$2
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
}

# kubernetes_ldflags VERSION : -ldflags that stamp VERSION into the Kubernetes binaries.
kubernetes_ldflags() {
  local v=$1 minor="${1#v1.}" ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=${minor%%.*}"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}

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
  kubernetes_build_module "$dir" "$v"
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
  local ld; ld="$(kubernetes_ldflags "$v")"
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

# --- Real kubelet nodes: kubelet, kube-proxy, CNI plugins, CoreDNS, pause ---------------------
# The pieces kubelet-node.sh runs a real node with (containerd and runc are Debian's packages).
# kubelet and kube-proxy come from their own throwaway module next to the control plane's, so
# machines that have the control plane cached build only these two (and share Go's build cache).
build_kubernetes_node() {
  local v=$KUBERNETES_VERSION
  local kubelet="$cache/bin/kubelet-$v" proxy="$cache/bin/kube-proxy-$v"
  if all_present "$kubelet" kubelet && all_present "$proxy" kube-proxy; then
    log "kubelet, kube-proxy $v: cached"
    return
  fi
  local t0=$SECONDS dir="$build_root/kubernetes-node-$v"
  kubernetes_build_module "$dir" "$v"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  log "kubelet, kube-proxy $v: resolving modules (go mod tidy)"
  (cd "$dir" && go mod tidy)
  mkdir -p "$dir/out"
  log "kubelet, kube-proxy $v: building"
  (cd "$dir" && go build -ldflags "$(kubernetes_ldflags "$v")" -o out/ \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  mkdir -p "$kubelet" "$proxy"
  install -m 0755 "$dir/out/kubelet" "$kubelet/kubelet"
  install -m 0755 "$dir/out/kube-proxy" "$proxy/kube-proxy"
  rm -rf "$dir/out"
  log "kubelet, kube-proxy $v: built in $((SECONDS - t0)) s"
}

build_cni_plugins() {
  local v=$CNI_PLUGINS_VERSION out="$cache/bin/cni-plugins-$CNI_PLUGINS_VERSION"
  local plugins=(bridge host-local loopback portmap)
  if all_present "$out" "${plugins[@]}"; then log "cni plugins $v: cached"; return; fi
  local t0=$SECONDS dir="$build_root/cni-plugins-$v"
  new_build_module "$dir" github.com/containernetworking/plugins "$v"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/containernetworking/plugins/plugins/main/bridge"\n\t_ "github.com/containernetworking/plugins/plugins/main/loopback"\n\t_ "github.com/containernetworking/plugins/plugins/ipam/host-local"\n\t_ "github.com/containernetworking/plugins/plugins/meta/portmap"\n)\n' >"$dir/tools.go"
  log "cni plugins $v: resolving modules"
  (cd "$dir" && go mod tidy)
  log "cni plugins $v: building ${plugins[*]}"
  mkdir -p "$dir/out"
  (cd "$dir" && go build -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$v" \
      -o out/ github.com/containernetworking/plugins/plugins/main/bridge \
      github.com/containernetworking/plugins/plugins/main/loopback \
      github.com/containernetworking/plugins/plugins/ipam/host-local \
      github.com/containernetworking/plugins/plugins/meta/portmap)
  mkdir -p "$out"
  local p; for p in "${plugins[@]}"; do install -m 0755 "$dir/out/$p" "$out/$p"; done
  rm -rf "$dir/out"
  log "cni plugins $v: built in $((SECONDS - t0)) s"
}

build_coredns() {
  local v=$COREDNS_VERSION out="$cache/bin/coredns-$COREDNS_VERSION"
  if all_present "$out" coredns; then log "coredns $v: cached"; return; fi
  local t0=$SECONDS dir="$build_root/coredns-$v"
  new_build_module "$dir" github.com/coredns/coredns "$v"
  # CoreDNS's own main compiles every plugin (cloud DNS providers among them); a test cluster
  # needs the kubernetes plugin and a few basics, in this order of the Corefile's directives.
  cat >"$dir/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"bind", "errors", "log", "health", "ready", "kubernetes"}
}

func main() { coremain.Run() }
GO
  sed -i 's#^module .*#module fjord.invalid/coredns#' "$dir/go.mod"
  log "coredns $v: resolving modules"
  (cd "$dir" && go mod tidy)
  log "coredns $v: building (kubernetes, errors, log, bind, health, ready plugins)"
  mkdir -p "$out"
  (cd "$dir" && go build -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$v" -o "$out/coredns" .)
  log "coredns $v: built in $((SECONDS - t0)) s"
}

# The Pod sandbox image: scripts/infra/pause/pause.go built statically and packed as a one-layer
# OCI image (what scripts/images/build.sh writes, minus the Debian packages), named
# localhost/fjord-pause:<hash of the source>, the sandbox_image of kubelet-node.sh's containerd.
build_pause() {
  local tag out
  tag="$(fjord_pause_tag "$here")"
  out="$cache/bin/pause-$tag"
  if [[ -x "$out/pause" && -f "$out/pause.oci.tar" ]]; then log "pause $tag: cached"; return; fi
  local dir="$build_root/pause-$tag"
  rm -rf "$dir" "$out.partial"; mkdir -p "$dir/rootfs" "$dir/layout/blobs/sha256" "$out.partial"
  cp "$here/pause/pause.go" "$dir/"
  printf 'module fjord.invalid/pause\n\ngo 1.24\n' >"$dir/go.mod"
  (cd "$dir" && go build -ldflags "-s -w" -o "$out.partial/pause" .)
  cp "$out.partial/pause" "$dir/rootfs/pause"
  local tar_opts=(--sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 --format=gnu)
  (cd "$dir/rootfs" && tar "${tar_opts[@]}" -cf "$dir/layer.tar" ./pause)
  local diff; diff=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  gzip -n -6 "$dir/layer.tar"
  pause_blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$dir/layout/blobs/sha256/$d"; echo "$d"; }
  local lsize layer csize config msize manifest
  lsize=$(stat -c %s "$dir/layer.tar.gz"); layer=$(pause_blob "$dir/layer.tar.gz")
  jq -cn --arg diff "sha256:$diff" '{architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
      config: {User: "65535:65535", Entrypoint: ["/pause"], WorkingDir: "/"},
      rootfs: {type: "layers", diff_ids: [$diff]}}' >"$dir/config.json"
  csize=$(stat -c %s "$dir/config.json"); config=$(pause_blob "$dir/config.json")
  jq -cn --arg c "sha256:$config" --argjson cs "$csize" --arg l "sha256:$layer" --argjson ls "$lsize" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}' >"$dir/manifest.json"
  msize=$(stat -c %s "$dir/manifest.json"); manifest=$(pause_blob "$dir/manifest.json")
  jq -cn --arg m "sha256:$manifest" --argjson size "$msize" --arg name "localhost/fjord-pause:$tag" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $size,
        platform: {architecture: "amd64", os: "linux"},
        annotations: {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": $name}}]}' \
    >"$dir/layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/layout/oci-layout"
  (cd "$dir/layout" && tar "${tar_opts[@]}" -cf "$out.partial/pause.oci.tar" oci-layout index.json blobs)
  rm -rf "$out" "$dir/rootfs" "$dir/layout" && mv "$out.partial" "$out"
  log "pause $tag: built ($out/pause.oci.tar)"
}

t_all=$SECONDS
build_kubernetes
build_helm
build_minio
build_kubernetes_node
build_cni_plugins
build_coredns
build_pause
"$here/install-kafka.sh"
"$here/install-flink.sh"
"$here/install-activemq.sh"
"$here/install-hadoop.sh"
"$here/install-opensearch.sh"
"$here/install-cassandra.sh"
"$here/install-kinesalite.sh"
log "all infrastructure binaries present under $cache ($((SECONDS - t_all)) s)"
