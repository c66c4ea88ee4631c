#!/usr/bin/env bash
# kubelet-node.sh — real kubelet nodes for a test cluster of up.sh: Pods run as real containers
# (containerd's CRI plugin with runc, Debian's packages) from the images scripts/images/build.sh
# writes, with CNI bridge networking, kube-proxy for ClusterIP Services and CoreDNS for their
# names. up.sh calls it when FJORD_REAL_NODES is set; by hand it works on any running RUN_DIR
# whose up.sh was started with FJORD_REAL_NODES (its Service range must be routable).
#
#   kubelet-node.sh start RUN_DIR
#       Start FJORD_REAL_NODES nodes (default 1, at most 4) named real-node-0, -1, ... and the
#       cluster-wide pieces, wait (at most FJORD_UP_TIMEOUT s, default 120) until every node is
#       Ready, and append their settings to RUN_DIR/env.
#   kubelet-node.sh down RUN_DIR
#       Stop everything start started, remove the containers, network namespaces, bridges,
#       cgroups and kube-proxy's nftables table. Idempotent.
#   kubelet-node.sh ctr RUN_DIR K ARGS...
#       `ctr` on node K's containerd, namespace k8s.io (the CRI's).
#
# Per node K (state under ${FJORD_CACHE:-~/.cache/fjord}/ctd/node-<block>-K, linked from
# RUN_DIR/real-nodes/K):
#   - a bridge fjord<block>n<K> with address 10.244.<block>.(64K+1)/26, the node's IP; the CNI
#     bridge plugin attaches each Pod's veth to it and host-local hands out the rest of the /26.
#     Pods get routes to 10.244.<block>.0/24 (every node's Pods) and to the Service range only:
#     no default route, no masquerading, so nothing from a Pod leaves the machine.
#   - containerd with the CRI plugin (own root, state, sockets, netns mounts), sandbox image
#     localhost/fjord-pause:<tag> (install.sh builds it), every *.oci.tar of
#     ~/.cache/fjord/images/test/ (FJORD_NODE_IMAGES: another directory) imported into k8s.io.
#     Registry pulls go to a proxy address nothing listens on, so a missing image fails at once
#     (ErrImagePull) without any traffic leaving the machine.
#   - a kubelet registered as real-node-K (client certificate system:node:real-node-K signed by
#     the run's CA, authorised by the API server's Node authorizer), cgroupfs driver under the
#     cgroup /fjord-<block>-K, no swap check, eviction and image GC thresholds that a full disk
#     does not trip, its API (logs, exec) on the node IP with a serving certificate of the CA.
# Cluster-wide (once): kube-proxy (nftables mode), CoreDNS answering cluster.local on every node
# IP port 53 (the kubelets' clusterDNS), socat forwarders of the loopback API server and MinIO
# to node 0's IP, with EndpointSlices so that the `kubernetes` Service (in-cluster clients)
# reaches the API server; MINIO_POD_ENDPOINT in RUN_DIR/env is the address Pods reach MinIO at.
#
# Machine-wide effects while the nodes run: net.ipv4.ip_forward=1 and
# net.bridge.bridge-nf-call-iptables=1 (the bridge plugin and kube-proxy need them), the kernel
# settings the kubelet sets at start (vm.overcommit_memory=1, kernel.panic=10,
# kernel.panic_on_oops=1, ...), kube-proxy's nftables tables `kube-proxy`, the kubelet's iptables
# chains, its symlinks in /var/log/containers and its /var/lib/kubelet/device-plugins; down
# restores the settings and removes the rest. Only one cluster with real nodes can run on a
# machine at a time (kube-proxy's table is machine-wide): a second start fails naming the first.
#
# Needs root. Exit codes: 3 binaries missing (run scripts/infra/install.sh) or packages missing
# (run scripts/install-deps.sh); 4 not root; 5 another cluster's real nodes are up.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

cache="$(fjord_cache)"
kubelet_bin=$(fjord_bin kubelet "$KUBERNETES_VERSION")
proxy_bin=$(fjord_bin kube-proxy "$KUBERNETES_VERSION")
kubectl_bin=$(fjord_bin kubectl "$KUBERNETES_VERSION")
coredns_bin=$(fjord_bin coredns "$COREDNS_VERSION")
cni_dir="$cache/bin/cni-plugins-$CNI_PLUGINS_VERSION"
pause_tag="$(fjord_pause_tag "$here")"
pause_tar="$cache/bin/pause-$pause_tag/pause.oci.tar"
pause_image="localhost/fjord-pause:$pause_tag"
containerd_bin=${FJORD_CONTAINERD:-$(command -v containerd || echo /usr/bin/containerd)}
ctr_bin=${FJORD_CTR:-$(command -v ctr || echo /usr/bin/ctr)}
runc_bin=${FJORD_RUNC:-$(command -v runc || echo /usr/sbin/runc)}
images_dir=${FJORD_NODE_IMAGES:-$cache/images/test}
timeout=${FJORD_UP_TIMEOUT:-120}
lock="$cache/run/real-nodes"
# The kernel settings the nodes change: forwarding and bridge netfilter (the bridge plugin and
# kube-proxy need them) and what the kubelet sets at its start (it is not told to protect
# them). Saved before the first node starts, restored by the down that releases the lock.
saved_sysctls="$cache/run/real-nodes.sysctl"
kubelet_sysctls=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory
  vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

log() { printf '[kubelet-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

require_install() {
  local b
  if [[ $(id -u) -ne 0 ]]; then
    echo "fjord infra: real kubelet nodes need root (runc creates namespaces, cgroups and overlay mounts; the CNI bridge plugin and kube-proxy configure the network); run the tests as root" >&2
    exit 4
  fi
  for b in "$kubelet_bin" "$proxy_bin" "$kubectl_bin" "$coredns_bin" "$cni_dir/bridge" \
           "$cni_dir/host-local" "$cni_dir/loopback" "$cni_dir/portmap" "$pause_tar"; do
    if [[ ! -e "$b" ]]; then
      echo "fjord infra: missing $b — run scripts/infra/install.sh (it builds the kubelet, kube-proxy, CoreDNS, the CNI plugins and the pause image once, then caches them)" >&2
      exit 3
    fi
  done
  for b in "$containerd_bin" "$ctr_bin" "$runc_bin" nft iptables conntrack socat ip openssl; do
    if ! command -v "$b" >/dev/null 2>&1; then
      echo "fjord infra: '$b' not found; run scripts/install-deps.sh (containerd, runc, nftables, iptables, conntrack, socat)" >&2
      exit 3
    fi
  done
}

# Per-run facts from up.sh's files.
load_run() {
  run=$1
  [[ -f "$run/ports.env" ]] || fjord_die "$run has no ports.env: start the cluster with up.sh first"
  # shellcheck disable=SC1091
  source "$run/ports.env"
  block=${POD_IP_BLOCK##*.}
  [[ "$SERVICE_CIDR" == 10.96.* ]] || fjord_die "$run's Service range $SERVICE_CIDR is on loopback, which Pods in their own network namespaces cannot reach; start it with FJORD_REAL_NODES=N scripts/infra/up.sh"
  nodes_dir="$run/real-nodes"
  kubeconfig="$run/kubeconfig"
  pki="$run/pki"
}

node_name() { echo "real-node-$1"; }
node_ip() { echo "10.244.$block.$((64 * $1 + 1))"; }
node_subnet() { echo "10.244.$block.$((64 * $1))/26"; }
node_bridge() { echo "fjord${block}n$1"; }
node_state() { echo "$cache/ctd/node-$block-$1"; }
node_cgroup() { echo "fjord-$block-$1"; }

kc() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }

# start NAME CMD... : run CMD in its own session, log and pid under RUN_DIR/real-nodes.
start_proc() {
  local name=$1; shift
  setsid "$@" >"$nodes_dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$nodes_dir/pids/$name.pid"
}

# wait_for NAME DESC CMD... : poll CMD (bounded by $timeout); fail with NAME's log tail.
wait_for() {
  local name=$1 desc=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -f "$nodes_dir/pids/$name.pid" ]] && ! fjord_pid_alive "$nodes_dir/pids/$name.pid"; then
      echo "fjord infra: $name exited while waiting for $desc; last lines of $nodes_dir/logs/$name.log:" >&2
      tail -n 30 "$nodes_dir/logs/$name.log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "fjord infra: timed out after ${timeout}s waiting for $desc; last lines of $nodes_dir/logs/$name.log:" >&2
      tail -n 30 "$nodes_dir/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

sign_cert() { # sign_cert NAME SUBJ EXT
  local out=$nodes_dir/pki/$1
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2>/dev/null
  openssl req -new -key "$out.key" -subj "$2" -out "$out.csr" 2>/dev/null
  printf '%s\n' "$3" >"$out.ext"
  openssl x509 -req -in "$out.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -extfile "$out.ext" -out "$out.crt" 2>/dev/null
}

write_kubeconfig() { # write_kubeconfig FILE CERTNAME
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: fjord-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: node
  user:
    client-certificate: $nodes_dir/pki/$2.crt
    client-key: $nodes_dir/pki/$2.key
contexts:
- name: fjord-test
  context: {cluster: fjord-test, user: node}
current-context: fjord-test
KC
  chmod 600 "$1"
}

# The cgroup /fjord-<block>-K in every v1 hierarchy (and the unified one): the kubelet's
# cgroupRoot, so two nodes never see each other's Pod cgroups as orphans.
make_cgroup() {
  local name=$1 d
  for d in /sys/fs/cgroup/*/; do
    [[ -d "$d" ]] || continue
    mkdir -p "$d$name"
    if [[ -f "$d/cpuset.cpus" ]]; then
      cat "$d/cpuset.cpus" >"$d$name/cpuset.cpus"
      cat "$d/cpuset.mems" >"$d$name/cpuset.mems"
    fi
  done
}

remove_cgroup() {
  local name=$1 d
  for d in /sys/fs/cgroup/*/; do
    [[ -d "$d$name" ]] || continue
    find "$d$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# start_runtime K : node K's bridge, CNI configuration and containerd (not waited for).
start_runtime() {
  local k=$1 name ip subnet br state
  name=$(node_name "$k"); ip=$(node_ip "$k"); subnet=$(node_subnet "$k")
  br=$(node_bridge "$k"); state=$(node_state "$k")
  rm -rf "$state"; mkdir -p "$state"/{root,state,cni/net.d,cni/ipam,kubelet,pod-logs,plugins,runc}
  ln -sfn "$state" "$nodes_dir/$k"

  # The bridge exists before any Pod: the kubelet serves its API on the node IP.
  ip link add "$br" type bridge 2>/dev/null || true
  ip addr replace "$ip/26" dev "$br"
  ip link set "$br" up
  if ((k == 0)); then
    # Connections to a ClusterIP nobody serves stay on this bridge (and fail) instead of
    # following the default route out of the machine.
    ip route replace "$SERVICE_CIDR" dev "$br"
  fi

  cat >"$state/cni/net.d/10-fjord.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "fjord",
  "plugins": [
    {
      "type": "bridge", "bridge": "$br", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$subnet", "gateway": "$ip"}]],
        "routes": [{"dst": "10.244.$block.0/24"}, {"dst": "$SERVICE_CIDR"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI

  cat >"$state/config.toml" <<CONF
# Written by scripts/infra/kubelet-node.sh: node $name's containerd with the CRI plugin.
version = 2
root = "$state/root"
state = "$state/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$state/containerd.sock"
[ttrpc]
  address = "$state/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$state/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE (a sandboxed machine): a Pod cannot get a lower
  # oom_score_adj than containerd's own (the kubelet asks -998 for sandboxes), so clamp it.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runc_bin"
        Root = "$state/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_dir"
    conf_dir = "$state/cni/net.d"
    max_conf_num = 1
CONF
  # No registry is reachable: a pull (an image that was not imported) goes to a proxy address
  # where nothing listens and fails at once, with no name lookup and no traffic off the machine.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY='' \
    start_proc "containerd-$k" "$containerd_bin" --config "$state/config.toml"
}

# import_images K : wait for node K's containerd, import the pause image and the test images
# into its k8s.io namespace (unpacked for the overlayfs snapshotter).
import_images() {
  local k=$1 state tar
  state=$(node_state "$k")
  local ctr=("$ctr_bin" --address "$state/containerd.sock" --namespace k8s.io)
  wait_for "containerd-$k" "containerd of $(node_name "$k")" "${ctr[@]}" version
  "${ctr[@]}" images import "$pause_tar" >/dev/null
  for tar in "$images_dir"/*.oci.tar; do
    [[ -f "$tar" ]] || continue
    "${ctr[@]}" images import "$tar" >/dev/null
  done
}

# start_kubelet K : node K's certificates, cgroup, configuration and kubelet.
start_kubelet() {
  local k=$1 name ip state
  name=$(node_name "$k"); ip=$(node_ip "$k"); state=$(node_state "$k")
  sign_cert "kubelet-$k" "/O=system:nodes/CN=system:node:$name" \
"basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign_cert "kubelet-serving-$k" "/CN=$name" \
"basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$ip,DNS:$name"
  write_kubeconfig "$state/kubelet.kubeconfig" "kubelet-$k"
  make_cgroup "$(node_cgroup "$k")"
  local port; port=$(fjord_alloc_port "$run")
  cat >"$state/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: $port
readOnlyPort: 0
healthzPort: 0
tlsCertFile: $nodes_dir/pki/kubelet-serving-$k.crt
tlsPrivateKeyFile: $nodes_dir/pki/kubelet-serving-$k.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$state/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$(node_cgroup "$k")
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
clusterDNS: [$ip]
clusterDomain: cluster.local
resolvConf: ""
podLogsDir: $state/pod-logs
volumePluginDir: $state/plugins
maxPods: 60
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 876000h
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
  imagefs.inodesFree: "0%"
evictionPressureTransitionPeriod: 5s
nodeStatusUpdateFrequency: 5s
nodeStatusReportFrequency: 10s
syncFrequency: 10s
fileCheckFrequency: 20s
runtimeRequestTimeout: 2m
shutdownGracePeriod: 0s
localStorageCapacityIsolation: true
YAML
  start_proc "kubelet-$k" "$kubelet_bin" --config "$state/kubelet.yaml" \
    --kubeconfig "$state/kubelet.kubeconfig" --root-dir "$state/kubelet" \
    --hostname-override "$name" --node-ip "$ip" --v=1
}

cluster_pieces() {
  local ip0; ip0=$(node_ip 0)
  # The loopback API server and MinIO, forwarded to node 0's IP for the Pods.
  start_proc forward-apiserver socat "TCP-LISTEN:$APISERVER_PORT,bind=$ip0,fork,reuseaddr" "TCP:127.0.0.1:$APISERVER_PORT"
  start_proc forward-minio socat "TCP-LISTEN:$MINIO_PORT,bind=$ip0,fork,reuseaddr" "TCP:127.0.0.1:$MINIO_PORT"
  # The `kubernetes` Service (up.sh runs the API server without its endpoint reconciler, whose
  # loopback address Endpoints refuse) points at the forwarder.
  kc apply -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes
  namespace: default
  labels:
    kubernetes.io/service-name: kubernetes
    endpointslice.kubernetes.io/managed-by: fjord-kubelet-node
addressType: IPv4
endpoints:
- addresses: ["$ip0"]
  conditions: {ready: true}
ports:
- name: https
  port: $APISERVER_PORT
  protocol: TCP
YAML

  sign_cert kube-proxy "/CN=system:kube-proxy" \
"basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  write_kubeconfig "$nodes_dir/kube-proxy.kubeconfig" kube-proxy
  local hz mz; hz=$(fjord_alloc_port "$run"); mz=$(fjord_alloc_port "$run")
  cat >"$nodes_dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $nodes_dir/kube-proxy.kubeconfig}
mode: nftables
hostnameOverride: $(node_name 0)
bindAddress: $ip0
healthzBindAddress: 127.0.0.1:$hz
metricsBindAddress: 127.0.0.1:$mz
clusterCIDR: 10.244.$block.0/24
nodePortAddresses: ["$ip0/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
syncPeriod: 30s
nftables: {minSyncPeriod: 0s}
YAML
  start_proc kube-proxy "$proxy_bin" --config "$nodes_dir/kube-proxy.yaml" --v=1

  local binds="" k hp rp
  for ((k = 0; k < nodes; k++)); do binds+=" $(node_ip "$k")"; done
  hp=$(fjord_alloc_port "$run"); rp=$(fjord_alloc_port "$run")
  cat >"$nodes_dir/Corefile" <<COREFILE
.:53 {
    bind$binds
    errors
    health 127.0.0.1:$hp
    ready 127.0.0.1:$rp
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $kubeconfig fjord-test
        pods insecure
        ttl 1
    }
}
COREFILE
  start_proc coredns "$coredns_bin" -conf "$nodes_dir/Corefile"
  echo "$rp" >"$nodes_dir/coredns-ready-port"
}

cmd_start() {
  require_install
  load_run "$1"
  nodes=${FJORD_REAL_NODES:-1}
  ((nodes >= 1 && nodes <= 4)) || fjord_die "FJORD_REAL_NODES must be 1 to 4 (got $nodes)"
  if ! fjord_reserve "$cache/run" real-nodes "$run"; then
    local owner; owner=$(cat "$lock" 2>/dev/null || true)
    if [[ -n "$owner" && "$owner" != "$run" ]] && ! fjord_pid_alive "$owner/pids/kube-apiserver.pid"; then
      # A run killed without its down.sh (its API server is gone): take its nodes down.
      log "the real nodes of $owner were left behind (its API server is gone); taking them down"
      "${BASH_SOURCE[0]}" down "$owner" || true
      rm -f "$lock"
    fi
    if [[ "$(cat "$lock" 2>/dev/null)" != "$run" ]] && ! fjord_reserve "$cache/run" real-nodes "$run"; then
      echo "fjord infra: another test cluster's real nodes are up on this machine ($(cat "$lock" 2>/dev/null)); kube-proxy's nftables table is machine-wide, so only one such cluster runs at a time" >&2
      exit 5
    fi
  fi
  local t0=$SECONDS
  rm -rf "$nodes_dir"
  mkdir -p "$nodes_dir"/{logs,pids,pki}
  echo "$nodes" >"$nodes_dir/count"
  # Kept from an earlier run that was never taken down: those are the machine's own values.
  [[ -f "$saved_sysctls" ]] || sysctl "${kubelet_sysctls[@]}" | sed 's/ = /=/' >"$saved_sysctls"
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  # Pods' own addresses are never masqueraded, and nothing from them is forwarded anywhere but
  # to the nodes' bridges: drop forwarded traffic from the pod range to any other interface.
  local k pids=()
  for ((k = 0; k < nodes; k++)); do start_runtime "$k"; done
  # The imports (unpacking some 250 MB per node) run side by side.
  for ((k = 0; k < nodes; k++)); do
    import_images "$k" >>"$nodes_dir/logs/import-$k.log" 2>&1 &
    pids+=($!)
  done
  for ((k = 0; k < nodes; k++)); do
    wait "${pids[$k]}" || { cat "$nodes_dir/logs/import-$k.log" >&2; fjord_die "importing the images into $(node_name "$k")'s containerd failed"; }
  done
  log "containerd up and images imported on $nodes node(s) in $((SECONDS - t0)) s"
  for ((k = 0; k < nodes; k++)); do start_kubelet "$k"; done
  cluster_pieces
  nft -f - <<NFT
table ip fjord-real-nodes-$block {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ip saddr 10.244.$block.0/24 oifname != "fjord${block}n*" drop
  }
}
NFT
  for ((k = 0; k < nodes; k++)); do
    local name; name=$(node_name "$k")
    node_ready() { [[ "$(kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
    wait_for "kubelet-$k" "node $name Ready" node_ready "$name"
  done
  wait_for coredns "CoreDNS ready" curl -fsS "http://127.0.0.1:$(cat "$nodes_dir/coredns-ready-port")/ready"
  {
    echo "export FJORD_REAL_NODES='$nodes'"
    echo "export FJORD_POD_CIDR='10.244.$block.0/24'"
    echo "export MINIO_POD_ENDPOINT='$(node_ip 0):$MINIO_PORT'"
  } >"$nodes_dir/env"
  log "$nodes real node(s) Ready in $((SECONDS - t0)) s (images from $images_dir)"
}

cmd_down() {
  [[ -d "$1" ]] || return 0
  run="$(cd "$1" && pwd)"
  nodes_dir="$run/real-nodes"
  [[ -d "$nodes_dir" ]] || return 0
  # shellcheck disable=SC1091
  source "$run/ports.env"
  block=${POD_IP_BLOCK##*.}
  local nodes k pf state ctr
  nodes=$(cat "$nodes_dir/count" 2>/dev/null || echo 4)
  # The kubelets first (they would restart what we kill), then every container of every node.
  for ((k = 0; k < nodes; k++)); do
    [[ -f "$nodes_dir/pids/kubelet-$k.pid" ]] && fjord_stop_group "$nodes_dir/pids/kubelet-$k.pid" TERM 10
  done
  for ((k = 0; k < nodes; k++)); do
    state=$(node_state "$k")
    ctr=("$ctr_bin" --address "$state/containerd.sock" --namespace k8s.io)
    if fjord_pid_alive "$nodes_dir/pids/containerd-$k.pid"; then
      local task
      for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
        "${ctr[@]}" tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
      done
      local n=0
      while [[ -n "$("${ctr[@]}" tasks ls -q 2>/dev/null | head -c 1)" ]] && ((n++ < 50)); do
        for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
          "${ctr[@]}" tasks delete -f "$task" >/dev/null 2>&1 || true
        done
        sleep 0.1
      done
    fi
  done
  for pf in "$nodes_dir"/pids/*.pid; do
    [[ -f "$pf" ]] && fjord_stop_group "$pf" TERM 10
  done
  # Whatever a killed shim left: processes in the nodes' cgroups.
  for ((k = 0; k < nodes; k++)); do
    local procs
    procs=$(cat /sys/fs/cgroup/pids/"$(node_cgroup "$k")"/cgroup.procs /sys/fs/cgroup/pids/"$(node_cgroup "$k")"/*/cgroup.procs \
      /sys/fs/cgroup/pids/"$(node_cgroup "$k")"/*/*/cgroup.procs /sys/fs/cgroup/pids/"$(node_cgroup "$k")"/*/*/*/cgroup.procs 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -z "$procs" ]] || kill -KILL $procs 2>/dev/null || true
  done
  sleep 0.2
  for ((k = 0; k < nodes; k++)); do
    state=$(node_state "$k")
    # Network namespaces, rootfs and shm mounts of the Pods (their veths go with the netns).
    if [[ -d "$state" ]]; then
      awk -v d="$state/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        xargs -r -n 1 umount -l 2>/dev/null || true
      awk -v d="$(readlink -f "$state")/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        xargs -r -n 1 umount -l 2>/dev/null || true
      find /var/log/containers -maxdepth 1 -type l -lname "$state/*" -delete 2>/dev/null || true
      rm -rf "$state"
    fi
    remove_cgroup "$(node_cgroup "$k")"
    ip link del "$(node_bridge "$k")" 2>/dev/null || true
  done
  nft delete table ip "fjord-real-nodes-$block" 2>/dev/null || true
  if [[ "$(cat "$lock" 2>/dev/null)" == "$run" ]]; then
    # kube-proxy's own tables (it removes them with --cleanup too).
    nft delete table ip kube-proxy 2>/dev/null || true
    nft delete table ip6 kube-proxy 2>/dev/null || true
    # The kubelet's own iptables chains (canaries, and a firewall chain against DNAT to 127/8).
    local ipt t
    for ipt in iptables ip6tables; do
      for t in mangle nat filter; do "$ipt" -t "$t" -X KUBE-KUBELET-CANARY 2>/dev/null || true; done
      "$ipt" -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
      "$ipt" -D INPUT -j KUBE-FIREWALL 2>/dev/null || true
      "$ipt" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
      "$ipt" -F KUBE-FIREWALL 2>/dev/null || true
      "$ipt" -X KUBE-FIREWALL 2>/dev/null || true
    done
    # The device manager's socket directory, a fixed path whatever the kubelet's root dir
    # (left alone if anything is in it, e.g. a real kubelet of the machine's).
    if ! pgrep -x kubelet >/dev/null; then
      rm -f /var/lib/kubelet/device-plugins/kubelet.sock
      if rmdir /var/lib/kubelet/device-plugins 2>/dev/null; then rmdir /var/lib/kubelet 2>/dev/null || true; fi
    fi
    # The iptables tables the kubelet's chains brought, once nothing is left in them.
    local fam rules
    for fam in ip ip6; do
      for t in mangle nat filter; do
        rules=$(nft list table "$fam" "$t" 2>/dev/null | grep -cvE '^[[:space:]]*(table|chain|type|policy|\}|$)' || true)
        [[ "$rules" != 0 ]] || nft delete table "$fam" "$t" 2>/dev/null || true
      done
    done
    # What the kubelet changed (vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1…).
    if [[ -f "$saved_sysctls" ]]; then
      local line
      while read -r line; do sysctl -qw "$line" 2>/dev/null || true; done <"$saved_sysctls"
      rm -f "$saved_sysctls"
    fi
    rm -f "$lock"
  fi
  rm -f "$nodes_dir/env"
  echo "fjord infra: real nodes of $run are down" >&2
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  down) shift; cmd_down "$@" ;;
  ctr)
    load_run "$2"; k=$3; shift 3
    "$ctr_bin" --address "$(node_state "$k")/containerd.sock" --namespace k8s.io "$@" ;;
  *) usage ;;
esac
