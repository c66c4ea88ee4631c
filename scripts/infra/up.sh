#!/usr/bin/env bash
# up.sh RUN_DIR — start a private test cluster on loopback and write RUN_DIR/env.
#
# Starts, each in its own process group with its log in RUN_DIR/logs/<name>.log:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler  (the real Kubernetes control plane)
#   minio                                                          (S3-compatible store, one bucket)
#   fjord-node-agent                                               (registers Nodes, runs Pods as processes)
# and waits until the API server is ready, the nodes are Ready, the default ServiceAccount exists
# and the bucket accepts requests. Ports are picked free and reserved under
# ${FJORD_CACHE:-~/.cache/fjord}/run so two runs never collide; pods of this run get addresses in
# their own 127.42.N.0/24 block and Services their ClusterIPs in 127.43.N.0/24.
#
# Idempotent: if RUN_DIR already holds a running cluster it prints so and exits 0.
# On any failure it stops whatever it started (down.sh) and exits non-zero.
#
# Environment (all optional):
#   FJORD_NODE_AGENT  path of the fjord-node-agent binary (default: build it with cargo)
#   FJORD_IMAGE_MAP   YAML file mapping image names to binaries (see docs/test-infrastructure.md)
#   FJORD_NODES       number of Nodes the agent registers (default 2)
#   FJORD_REAL_NODES  if set (1-4): real kubelet nodes (kubelet-node.sh) instead of the node
#                     agent; Services then get ClusterIPs in 10.96.N.0/24, which Pods in their
#                     own network namespaces can reach, and Pods addresses in 10.244.N.0/24
#   FJORD_UP_TIMEOUT  seconds to wait for each component (default 120)
#   FJORD_E2E_OWNER_PID  if set, a watchdog runs down.sh as soon as that process is gone
#
# Exit codes: 0 up, 3 binaries missing (run install.sh), other non-zero: a component failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ $# -eq 1 ]] || fjord_die "usage: up.sh RUN_DIR"
mkdir -p "$1"
run="$(cd "$1" && pwd)"
timeout="${FJORD_UP_TIMEOUT:-120}"
t_start=$SECONDS

real_nodes=${FJORD_REAL_NODES:-0}
if [[ -f "$run/env" ]] && fjord_pid_alive "$run/pids/kube-apiserver.pid" &&
   { fjord_pid_alive "$run/pids/node-agent.pid" || [[ -f "$run/real-nodes/env" ]]; }; then
  echo "fjord infra: $run is already up (source $run/env)"
  exit 0
fi

# --- binaries --------------------------------------------------------------------------------
etcd_bin=$(fjord_bin etcd "$ETCD_BUILD_TAG")
apiserver_bin=$(fjord_bin kube-apiserver "$KUBERNETES_VERSION")
cm_bin=$(fjord_bin kube-controller-manager "$KUBERNETES_VERSION")
sched_bin=$(fjord_bin kube-scheduler "$KUBERNETES_VERSION")
kubectl_bin=$(fjord_bin kubectl "$KUBERNETES_VERSION")
helm_bin=$(fjord_bin helm "$HELM_VERSION")
minio_bin=$(fjord_bin minio "$MINIO_VERSION")
for b in "$etcd_bin" "$apiserver_bin" "$cm_bin" "$sched_bin" "$kubectl_bin" "$helm_bin" "$minio_bin"; do
  if [[ ! -x "$b" ]]; then
    echo "fjord infra: missing $b — run scripts/infra/install.sh first (it builds the test infrastructure once, then caches it)" >&2
    exit 3
  fi
done
agent_bin="${FJORD_NODE_AGENT:-}"
if ((real_nodes > 0)); then
  agent_bin=""   # kubelet-node.sh checks its own binaries
elif [[ -z "$agent_bin" ]]; then
  echo "fjord infra: FJORD_NODE_AGENT not set; building fjord-node-agent with cargo" >&2
  (cd "$repo" && cargo build -q -p fjord-e2e --bin fjord-node-agent --bin fjord-e2e-echo)
  agent_bin="$(cd "$repo" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/fjord-node-agent"
fi
((real_nodes > 0)) || [[ -x "$agent_bin" ]] || fjord_die "node agent binary $agent_bin not found or not executable"

# --- cleanup on failure ------------------------------------------------------------------------
on_error() {
  local rc=$?
  echo "fjord infra: up.sh failed (exit $rc); logs are in $run/logs; stopping what was started" >&2
  env -u FJORD_E2E_RUN_ID "$here/down.sh" "$run" >&2 || true
  exit "$rc"
}
trap on_error ERR

# A fresh cluster every time: no etcd/MinIO data or agent state from an earlier run of this dir.
rm -rf "$run/data" "$run/agent" "$run/pki" "$run/real-nodes"
mkdir -p "$run/logs" "$run/pids" "$run/pki" "$run/data"
run_id="fjord-$(date +%s)-$$-$RANDOM"
echo "$run_id" >"$run/run-id"
export FJORD_E2E_RUN_ID="$run_id"   # inherited by every process; down.sh sweeps by it

# --- watchdog: if the owning test process dies without stopping us (SIGKILL, also while this
# script is still starting things), stop everything ---
if [[ -n "${FJORD_E2E_OWNER_PID:-}" ]]; then
  owner=$FJORD_E2E_OWNER_PID
  env -u FJORD_E2E_RUN_ID setsid bash -c '
    while s=$(cat "/proc/$1/stat" 2>/dev/null) && s=${s##*) } && [[ ${s%% *} != Z ]]; do sleep 1; done
    setsid "$2" "$3"' fjord-watchdog "$owner" "$here/down.sh" "$run" >"$run/logs/watchdog.log" 2>&1 </dev/null &
  echo $! >"$run/pids/watchdog.pid"
fi


# --- ports and pod address block --------------------------------------------------------------
etcd_port=$(fjord_alloc_port "$run"); etcd_peer_port=$(fjord_alloc_port "$run")
api_port=$(fjord_alloc_port "$run"); cm_port=$(fjord_alloc_port "$run"); sched_port=$(fjord_alloc_port "$run")
minio_port=$(fjord_alloc_port "$run"); minio_console_port=$(fjord_alloc_port "$run")
kubelet_port=$(fjord_alloc_port "$run")
ipblock=$(fjord_alloc_ipblock "$run")
# ClusterIPs come from this run's own loopback block: the node agent (standing in for kube-proxy)
# listens on them, and a stray connection stays on this machine.
service_cidr="127.43.$ipblock.0/24"
# Real nodes' Pods live in network namespaces of their own, where 127.0.0.0/8 is their own
# loopback: their ClusterIPs are in a routable range that kube-proxy translates, and that
# kubelet-node.sh routes to its bridge so a stray connection stays on this machine.
((real_nodes == 0)) || service_cidr="10.96.$ipblock.0/24"
cat >"$run/ports.env" <<PORTS
ETCD_PORT=$etcd_port
ETCD_PEER_PORT=$etcd_peer_port
APISERVER_PORT=$api_port
CONTROLLER_MANAGER_PORT=$cm_port
SCHEDULER_PORT=$sched_port
MINIO_PORT=$minio_port
MINIO_CONSOLE_PORT=$minio_console_port
KUBELET_PORT=$kubelet_port
POD_IP_BLOCK=127.42.$ipblock
SERVICE_CIDR=$service_cidr
PORTS

# --- PKI: CA, API server serving cert, admin client cert, service-account key pair -------------
pki="$run/pki"
gen_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
gen_key "$pki/ca.key"
openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=fjord-test-ca" -days 30 -out "$pki/ca.crt" 2>/dev/null
sign() { # sign NAME SUBJ EXTFILE_CONTENT
  gen_key "$pki/$1.key"
  openssl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
}
sign apiserver "/CN=kube-apiserver" \
"basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:${service_cidr%.0/24}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin "/O=system:masters/CN=fjord-admin" \
"basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
# The node agent's kubelet API (container logs for kubectl logs) on the nodes' address.
sign kubelet "/CN=fjord-node-agent" \
"basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.42.$ipblock.1"
gen_key "$pki/sa.key"
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

b64() { base64 -w0 <"$1"; }
kubeconfig="$run/kubeconfig"
cat >"$kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: fjord-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: fjord-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: fjord-test
  context:
    cluster: fjord-test
    user: fjord-admin
    namespace: default
current-context: fjord-test
KC
chmod 600 "$kubeconfig"

# start NAME CMD... : run CMD in its own session/process group, log and pid under RUN_DIR.
start() {
  local name=$1; shift
  setsid "$@" >"$run/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$run/pids/$name.pid"
}
# wait_or_die NAME DESC CMD... : poll until CMD succeeds; fail with the tail of NAME's log.
wait_or_die() {
  local name=$1 desc=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! fjord_pid_alive "$run/pids/$name.pid"; then
      echo "fjord infra: $name exited while waiting for $desc; last lines of $run/logs/$name.log:" >&2
      tail -n 30 "$run/logs/$name.log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "fjord infra: timed out after ${timeout}s waiting for $desc; last lines of $run/logs/$name.log:" >&2
      tail -n 30 "$run/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# --- etcd ---------------------------------------------------------------------------------------
start etcd "$etcd_bin" --name fjord --data-dir "$run/data/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "fjord=http://127.0.0.1:$etcd_peer_port" --listen-metrics-urls "" \
  --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn

# --- MinIO (starts in parallel with the control plane) ------------------------------------------
minio_user="fjord-test"
minio_secret="$(openssl rand -hex 16)"
bucket="fjord-test"
MINIO_ROOT_USER="$minio_user" MINIO_ROOT_PASSWORD="$minio_secret" MINIO_UPDATE=off MINIO_BROWSER=off \
  start minio "$minio_bin" server --quiet --address "127.0.0.1:$minio_port" \
  --console-address "127.0.0.1:$minio_console_port" "$run/data/minio"

wait_or_die etcd "etcd on port $etcd_port" curl -fsS "http://127.0.0.1:$etcd_port/health"

# --- kube-apiserver -------------------------------------------------------------------------------
start kube-apiserver "$apiserver_bin" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$service_cidr" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=true \
  --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
  --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
  --endpoint-reconciler-type none \
  --profiling=false --v=1

apiserver_ready() {
  curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$api_port/readyz"
}
wait_or_die kube-apiserver "kube-apiserver /readyz on port $api_port" apiserver_ready

# --- controller manager and scheduler ---------------------------------------------------------------
start kube-controller-manager "$cm_bin" \
  --kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$cm_port" --leader-elect=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=false --profiling=false --v=1
start kube-scheduler "$sched_bin" \
  --kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false --profiling=false --v=1

# --- node agent, or real kubelet nodes ------------------------------------------------------------
kc() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
if ((real_nodes > 0)); then
  rc=0
  FJORD_REAL_NODES=$real_nodes FJORD_UP_TIMEOUT=$timeout "$here/kubelet-node.sh" start "$run" \
    2>>"$run/logs/kubelet-node.log" || rc=$?
  if ((rc)); then
    echo "fjord infra: kubelet-node.sh start failed (exit $rc); last lines of $run/logs/kubelet-node.log:" >&2
    tail -n 40 "$run/logs/kubelet-node.log" >&2
    (exit "$rc")   # the ERR trap stops everything and exits with this code (3: not installed)
  fi
else
  images="$run/images.yaml"
  if [[ -n "${FJORD_IMAGE_MAP:-}" ]]; then cp "$FJORD_IMAGE_MAP" "$images"; else echo "images: {}" >"$images"; fi
  start node-agent "$agent_bin" \
    --kubeconfig "$kubeconfig" --nodes "${FJORD_NODES:-2}" --ip-block "127.42.$ipblock" \
    --root "$run/agent" --image-map "$images" --apiserver-port "$api_port" \
    --kubelet-port "$kubelet_port" --kubelet-cert "$pki/kubelet.crt" --kubelet-key "$pki/kubelet.key"

  # --- readiness ----------------------------------------------------------------------------------------
  nodes_ready() {
    local want=${FJORD_NODES:-2} got
    got=$(kc get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')
    [[ "$got" -ge "$want" ]]
  }
  wait_or_die node-agent "${FJORD_NODES:-2} Ready nodes" nodes_ready
fi
wait_or_die kube-controller-manager "the default ServiceAccount" kc get serviceaccount default -n default
wait_or_die kube-scheduler "kube-scheduler /healthz" curl -fsSk "https://127.0.0.1:$sched_port/healthz"
wait_or_die minio "MinIO readiness on port $minio_port" curl -fsS "http://127.0.0.1:$minio_port/minio/health/ready"
make_bucket() {
  curl -fsS -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$minio_user:$minio_secret" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "http://127.0.0.1:$minio_port/$bucket"
}
wait_or_die minio "bucket $bucket" make_bucket

cat >"$run/env" <<ENV
# Written by scripts/infra/up.sh; source it to talk to this test cluster.
export FJORD_E2E_RUN_DIR='$run'
export FJORD_E2E_RUN_ID='$run_id'
export KUBECONFIG='$kubeconfig'
export FJORD_KUBECTL='$kubectl_bin'
export FJORD_HELM='$helm_bin'
export FJORD_E2E_BIN_DIR='$run/bin'
export FJORD_APISERVER='https://127.0.0.1:$api_port'
export FJORD_POD_IP_BLOCK='127.42.$ipblock'
export FJORD_SERVICE_CIDR='$service_cidr'
export FJORD_S3_ENDPOINT='http://127.0.0.1:$minio_port'
export FJORD_S3_BUCKET='$bucket'
export AWS_ACCESS_KEY_ID='$minio_user'
export AWS_SECRET_ACCESS_KEY='$minio_secret'
export AWS_REGION='us-east-1'
export AWS_ENDPOINT='http://127.0.0.1:$minio_port'
export AWS_ALLOW_HTTP='true'
ENV
[[ ! -f "$run/real-nodes/env" ]] || cat "$run/real-nodes/env" >>"$run/env"
mkdir -p "$run/bin"
ln -sf "$kubectl_bin" "$run/bin/kubectl"
ln -sf "$helm_bin" "$run/bin/helm"
trap - ERR
echo "fjord infra: up in $((SECONDS - t_start)) s — source $run/env (kubectl and helm are in $run/bin)"
