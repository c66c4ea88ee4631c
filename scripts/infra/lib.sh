# Shared helpers for the infra scripts (sourced, not executed).

# fjord_cache: the cache root.
fjord_cache() { echo "${FJORD_CACHE:-$HOME/.cache/fjord}"; }

# fjord_bin TOOL DIRVERSION : path of a cached binary (may not exist).
fjord_bin() { echo "$(fjord_cache)/bin/$1-$2/$1"; }

# fjord_die MSG... : print to stderr and exit 1.
fjord_die() { echo "fjord infra: $*" >&2; exit 1; }

# fjord_port_in_use PORT : true if any TCP socket (any state, v4/v6) has PORT as its local port.
fjord_port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# fjord_reserve DIR CANDIDATE OWNER : atomically create DIR/CANDIDATE naming OWNER (a run dir).
# A reservation whose owner has no run-id file (directory gone, or stopped by down.sh, which
# removes it) is stale and taken over.
fjord_reserve() {
  local dir=$1 cand=$2 owner=$3 f="$1/$2"
  mkdir -p "$dir"
  if (set -o noclobber; echo "$owner" >"$f") 2>/dev/null; then return 0; fi
  local prev; prev=$(cat "$f" 2>/dev/null || true)
  if [[ -n "$prev" && ! -f "$prev/run-id" ]]; then
    rm -f "$f"
    (set -o noclobber; echo "$owner" >"$f") 2>/dev/null && return 0
  fi
  return 1
}

# fjord_alloc_port OWNER : print a free TCP port reserved for OWNER. Ports come from 10000 up to
# just below the kernel's ephemeral range (ip_local_port_range), so that no outgoing connection
# can be holding the port when the server binds it.
fjord_alloc_port() {
  local owner=$1 dir tries=0 p low=10000 high=32767 eph
  dir="$(fjord_cache)/run/ports"
  if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((eph > low + 1000)); then
    high=$((eph - 1))
  fi
  while ((tries++ < 500)); do
    p=$((low + (RANDOM * 32768 + RANDOM) % (high - low + 1)))
    fjord_port_in_use "$p" && continue
    fjord_reserve "$dir" "$p" "$owner" && { echo "$p"; return 0; }
  done
  fjord_die "could not find a free port after 500 tries"
}

# fjord_alloc_ipblock OWNER : print N such that 127.42.N.0/24 is reserved for OWNER's pods.
fjord_alloc_ipblock() {
  local owner=$1 dir n tries=0
  dir="$(fjord_cache)/run/ipblocks"
  while ((tries++ < 500)); do
    n=$((1 + RANDOM % 254))
    fjord_reserve "$dir" "$n" "$owner" && { echo "$n"; return 0; }
  done
  fjord_die "could not reserve a pod address block after 500 tries"
}

# fjord_release_owned OWNER : drop every port/address reservation held by OWNER.
fjord_release_owned() {
  local owner=$1 f
  for f in "$(fjord_cache)"/run/ports/* "$(fjord_cache)"/run/ipblocks/*; do
    [[ -f "$f" ]] || continue
    [[ "$(cat "$f" 2>/dev/null)" == "$owner" ]] && rm -f "$f"
  done
  return 0
}

# fjord_running PID : true if PID is a live process (a zombie waiting to be reaped is not).
fjord_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat%% *}" != "Z" ]]
}

# fjord_pid_alive PIDFILE : true if the pid in PIDFILE is a live process.
fjord_pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && fjord_running "$pid"
}

# fjord_stop_group PIDFILE SIGNAL [SECONDS] : signal the process group in PIDFILE (or the
# process, if it leads none), wait up to SECONDS (default 30) for it to end, then SIGKILL.
fjord_stop_group() {
  local pf=$1 sig=$2 limit=$((${3:-30} * 20)) pid n=0
  pid=$(cat "$pf" 2>/dev/null) || return 0
  rm -f "$pf"
  [[ -n "$pid" ]] && fjord_running "$pid" || return 0
  kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
  while fjord_running "$pid" && ((n++ < limit)); do sleep 0.05; done
  if fjord_running "$pid"; then
    echo "fjord infra: pid $pid ($pf) still running ${3:-30} s after SIG$sig; sending SIGKILL" >&2
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    n=0; while fjord_running "$pid" && ((n++ < 200)); do sleep 0.05; done
  fi
}

# fjord_listening PORT : true if a socket listens on PORT (state 0A). Java binds 127.0.0.1
# through an IPv6 socket (::ffff:127.0.0.1), so /proc/net/tcp6 counts too.
fjord_listening() {
  local hex; hex=$(printf ':%04X' "$1")
  awk -v p="$hex" 'NR > 1 && substr($2, length($2) - 4) == p && $4 == "0A" { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# fjord_start_watchdog DIR SCRIPT : with FJORD_E2E_OWNER_PID set, a process in its own session
# that runs `SCRIPT down DIR` as soon as that owner is gone (a test killed mid-run leaks no
# server); its pid goes to DIR/pids/watchdog.pid.
fjord_start_watchdog() {
  local dir=$1 script=$2
  if [[ -n "${FJORD_E2E_OWNER_PID:-}" ]] && ! fjord_pid_alive "$dir/pids/watchdog.pid"; then
    setsid bash -c '
      while s=$(cat "/proc/$1/stat" 2>/dev/null) && s=${s##*) } && [[ ${s%% *} != Z ]]; do sleep 1; done
      setsid "$2" down "$3"' "fjord-$(basename "$script" .sh)-watchdog" "$FJORD_E2E_OWNER_PID" \
      "$script" "$dir" >>"$dir/logs/watchdog.log" 2>&1 </dev/null &
    echo $! >"$dir/pids/watchdog.pid"
  fi
}

# fjord_finish_down DIR NAME : the end of a server's `down` once it is stopped: the watchdog
# last (it may be the caller: it runs `down` in its own session), the port reservations, the
# run id.
fjord_finish_down() {
  local dir=$1 name=$2 wpid
  wpid=$(cat "$dir/pids/watchdog.pid" 2>/dev/null || true)
  rm -f "$dir/pids/watchdog.pid"
  [[ -n "$wpid" ]] && fjord_running "$wpid" && kill -TERM -- "-$wpid" 2>/dev/null || true
  fjord_release_owned "$dir"
  rm -f "$dir/run-id"
  echo "fjord infra: $name in $dir is down" >&2
}

# fjord_java_major JAVA : the major version of the `java` binary JAVA (17 for "17.0.15"), or
# nothing if it does not run.
fjord_java_major() {
  local line v
  line=$("$1" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1) || return 1
  [[ -n "$line" ]] || return 1
  v=${line%%[.+-]*}
  [[ "$v" == 1 ]] && v=$(echo "$line" | cut -d. -f2)   # "1.8.0_402" -> 8
  echo "$v"
}

# fjord_java [MIN_MAJOR] : path of a `java` of at least MIN_MAJOR (default 17): $FJORD_JAVA,
# $JAVA_HOME/bin/java, `java` on the PATH, then the JDKs under /usr/lib/jvm (newest first).
# Fails with a message naming what to install.
fjord_java() {
  local min=${1:-17} c major
  local -a cands=()
  [[ -n "${FJORD_JAVA:-}" ]] && cands+=("$FJORD_JAVA")
  [[ -n "${JAVA_HOME:-}" ]] && cands+=("$JAVA_HOME/bin/java")
  c=$(command -v java 2>/dev/null) && cands+=("$c")
  for c in $(ls -d /usr/lib/jvm/*/bin/java /opt/java/*/bin/java 2>/dev/null | sort -rV); do cands+=("$c"); done
  for c in "${cands[@]}"; do
    [[ -x "$c" ]] || continue
    major=$(fjord_java_major "$c" 2>/dev/null) || continue
    [[ "$major" =~ ^[0-9]+$ ]] && ((major >= min)) && { echo "$c"; return 0; }
  done
  echo "fjord infra: no Java >= $min found (tried: ${cands[*]:-none}). Install one, e.g." \
    "'apt-get install openjdk-17-jre-headless', or point FJORD_JAVA or JAVA_HOME at it." >&2
  return 1
}

# fjord_kafka_home : the cached Kafka installation (libs/ holds every jar) of KAFKA_VERSION.
fjord_kafka_home() { echo "$(fjord_cache)/kafka-${KAFKA_VERSION:?versions.env not sourced}"; }

# fjord_kafka_tools_dir INFRA_DIR : where install-kafka.sh compiles the project's Kafka test tools
# (INFRA_DIR/kafka/src), named by a hash of their sources so an edit compiles anew.
fjord_kafka_tools_dir() {
  local h
  h=$(cat "$1"/kafka/src/fjord/infra/*.java | sha256sum | cut -c1-12)
  echo "$(fjord_kafka_home)/fjord-tools-$h"
}

# fjord_apt_install PACKAGE... : installs Debian packages (with sudo unless root).
fjord_apt_install() {
  echo "fjord infra: installing Debian packages: $*" >&2
  local sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

# fjord_jdk_with_maven : makes sure a JDK >= 17 (java and javac) and Maven are present, installing
# Debian's if not; prints the java to use and exports JAVA_HOME to its JDK so Maven runs on it.
fjord_jdk_with_maven() {
  local java
  java=$(fjord_java 17 2>/dev/null) || true
  if [[ -z "$java" || ! -x "$(dirname "$java")/javac" ]]; then
    fjord_apt_install openjdk-17-jdk-headless
    java=$(FJORD_JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java fjord_java 17)
  fi
  [[ -x "$(dirname "$java")/javac" ]] || fjord_die "no javac beside $java; install a JDK >= 17"
  command -v mvn >/dev/null 2>&1 || fjord_apt_install maven
  JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$java")")")"
  export JAVA_HOME
  echo "$java"
}

# fjord_maven_libs POM DEST [-Dkey=value]... : resolves POM's runtime dependencies from Maven
# Central into DEST (every jar), atomically: DEST appears complete (with DEST/.complete) or not at all.
fjord_maven_libs() {
  local pom=$1 dest=$2; shift 2
  local tmp="$dest.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies "$@" \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
  touch "$tmp/.complete"
  rm -rf "$dest"; mv "$tmp" "$dest"
}

# fjord_javac_dir JAVA SRC_DIR CLASSPATH DEST : compiles SRC_DIR/**/*.java against CLASSPATH into
# DEST, atomically (DEST/.complete marks a finished compile).
fjord_javac_dir() {
  local java=$1 src=$2 cp=$3 dest=$4
  rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
  # shellcheck disable=SC2046
  "$(dirname "$java")/javac" -nowarn --release 17 -cp "$cp" -d "$dest.tmp" $(find "$src" -name '*.java' | sort)
  touch "$dest.tmp/.complete"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

# fjord_flink_home : the cached Apache Flink runtime (libs/ holds every jar) of FLINK_VERSION.
fjord_flink_home() { echo "$(fjord_cache)/flink-${FLINK_VERSION:?versions.env not sourced}"; }

# fjord_flink_oracle_dir INFRA_DIR : where install-flink.sh compiles the oracle's cases
# (INFRA_DIR/flink/src), named by a hash of their sources so an edit compiles anew.
fjord_flink_oracle_dir() {
  local h
  h=$(find "$1/flink/src" -name '*.java' | sort | xargs cat | sha256sum | cut -c1-12)
  echo "$(fjord_flink_home)/oracle-$h"
}

# fjord_activemq_home : the cached ActiveMQ broker (libs/ holds every jar) of ACTIVEMQ_VERSION.
fjord_activemq_home() { echo "$(fjord_cache)/activemq-${ACTIVEMQ_VERSION:?versions.env not sourced}"; }

# fjord_activemq_tools_dir INFRA_DIR : where install-activemq.sh compiles the broker's main and
# the test tools (INFRA_DIR/activemq/src), named by a hash of their sources so an edit compiles
# anew.
fjord_activemq_tools_dir() {
  local h
  h=$(cat "$1"/activemq/src/fjord/infra/*.java | sha256sum | cut -c1-12)
  echo "$(fjord_activemq_home)/fjord-tools-$h"
}

# fjord_hadoop_home : the cached Hadoop mini-cluster (libs/ holds every jar) of HADOOP_VERSION.
fjord_hadoop_home() { echo "$(fjord_cache)/hadoop-${HADOOP_VERSION:?versions.env not sourced}"; }

# fjord_hadoop_tools_dir INFRA_DIR : where install-hadoop.sh compiles the mini-cluster's main
# (INFRA_DIR/hadoop/src), named by a hash of its sources so an edit compiles anew.
fjord_hadoop_tools_dir() {
  local h
  h=$(cat "$1"/hadoop/src/fjord/infra/*.java | sha256sum | cut -c1-12)
  echo "$(fjord_hadoop_home)/fjord-tools-$h"
}

# fjord_opensearch_home : the cached OpenSearch node of OPENSEARCH_VERSION: lib/ (the server's
# jars), modules/transport-netty4/ (the HTTP module with its descriptor).
fjord_opensearch_home() { echo "$(fjord_cache)/opensearch-${OPENSEARCH_VERSION:?versions.env not sourced}"; }

# fjord_opensearch_tools_dir INFRA_DIR : where install-opensearch.sh compiles the node's main
# (INFRA_DIR/opensearch/src), named by a hash of its sources so an edit compiles anew.
fjord_opensearch_tools_dir() {
  local h
  h=$(cat "$1"/opensearch/src/fjord/infra/*.java | sha256sum | cut -c1-12)
  echo "$(fjord_opensearch_home)/fjord-tools-$h"
}

# fjord_cassandra_home : the cached Apache Cassandra (libs/ holds every jar) of CASSANDRA_VERSION.
fjord_cassandra_home() { echo "$(fjord_cache)/cassandra-${CASSANDRA_VERSION:?versions.env not sourced}"; }

# The npm prefix kinesalite is installed into (install-kinesalite.sh).
fjord_kinesalite_home() { echo "$(fjord_cache)/kinesalite-${KINESALITE_VERSION:?versions.env not sourced}"; }

# fjord_pause_tag INFRA_DIR : the tag of the locally built pause image (a hash of its source),
# cached by install.sh as $(fjord_cache)/bin/pause-<tag>/{pause,pause.oci.tar}.
fjord_pause_tag() { sha256sum "$1/pause/pause.go" | cut -c1-12; }
