#!/usr/bin/env bash
# Resolves (once) and caches an OpenSearch node for the Elasticsearch/OpenSearch connector's
# tests: the server (org.opensearch:opensearch) with every runtime dependency, the plugin class
# loader and Log4j Core into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/opensearch-<OPENSEARCH_VERSION>/lib/*.jar
# the HTTP module (org.opensearch.plugin:transport-netty4-client and its Netty jars) with a
# plugin descriptor, as a distribution lays it out, into
#   .../opensearch-<OPENSEARCH_VERSION>/modules/transport-netty4/
# and compiles the project's node main (opensearch/src/fjord/infra/OpenSearchNode.java) into
# .../opensearch-<OPENSEARCH_VERSION>/fjord-tools-<hash of the source>/. A second run finds all
# of it in place and returns at once. Called by install.sh; can run on its own.
#
# Needs a JDK >= 17 and Maven; installs Debian's if missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[install-opensearch %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

home="$(fjord_opensearch_home)"
tools="$(fjord_opensearch_tools_dir "$here")"
module="$home/modules/transport-netty4"
complete() { [[ -f "$home/lib/.complete" && -f "$module/.complete" && -f "$tools/.complete" ]]; }
if complete; then
  log "opensearch $OPENSEARCH_VERSION: cached in $home"
  exit 0
fi

cache="$(fjord_cache)"
mkdir -p "$cache"
exec 8>"$cache/install-opensearch.lock"
if ! flock -n 8; then
  log "another install-opensearch.sh is running on $cache; waiting for it"
  flock 8
  if complete; then log "opensearch $OPENSEARCH_VERSION: cached in $home"; exit 0; fi
fi

java=$(fjord_jdk_with_maven)
v=$OPENSEARCH_VERSION
t0=$SECONDS
if [[ ! -f "$home/lib/.complete" ]]; then
  log "opensearch $v: resolving org.opensearch:opensearch + plugin class loader + log4j-core (Maven)"
  fjord_maven_libs "$here/opensearch/pom.xml" "$home/lib" \
    -Dopensearch.version="$v" -Dlog4j.version="$OPENSEARCH_LOG4J_VERSION"
  for jar in "opensearch-$v.jar" "opensearch-plugin-classloader-$v.jar" "lucene-core-"*.jar \
             "log4j-core-$OPENSEARCH_LOG4J_VERSION.jar" "log4j-api-$OPENSEARCH_LOG4J_VERSION.jar"; do
    compgen -G "$home/lib/$jar" >/dev/null || { rm -rf "$home/lib"; fjord_die "install-opensearch.sh: $jar was not resolved (is OPENSEARCH_LOG4J_VERSION the log4j-api version opensearch $v depends on?)"; }
  done
  echo "$v" >"$home/lib/VERSION"
  log "opensearch $v: $(ls "$home/lib" | grep -c '\.jar$') jars in $home/lib ($((SECONDS - t0)) s)"
fi

if [[ ! -f "$module/.complete" ]]; then
  log "opensearch $v: resolving the transport-netty4 module (Maven)"
  fjord_maven_libs "$here/opensearch/netty4-pom.xml" "$module.jars" -Dopensearch.version="$v"
  [[ -f "$module.jars/transport-netty4-client-$v.jar" ]] || { rm -rf "$module.jars"; fjord_die "install-opensearch.sh: transport-netty4-client-$v.jar was not resolved"; }
  # The descriptor and security policy a distribution ships beside the module's jars (the
  # Maven artifact carries neither). The class is the module's plugin entry point.
  cat >"$module.jars/plugin-descriptor.properties" <<DESC
description=Netty 4 based transport and HTTP implementation
version=$v
name=transport-netty4
classname=org.opensearch.transport.Netty4Plugin
java.version=11
opensearch.version=$v
extended.plugins=
has.native.controller=false
DESC
  cat >"$module.jars/plugin-security.policy" <<'POLICY'
grant codeBase "${codebase.netty-common}" {
   permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read";
   permission java.net.SocketPermission "*", "accept,connect";
   permission java.lang.RuntimePermission "*", "setContextClassLoader";
};
grant codeBase "${codebase.netty-transport}" {
   permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write";
};
POLICY
  rm -rf "$module"; mkdir -p "$(dirname "$module")"; mv "$module.jars" "$module"
fi

if [[ ! -f "$tools/.complete" ]]; then
  log "opensearch $v: compiling the node main (opensearch/src) into $tools"
  fjord_javac_dir "$java" "$here/opensearch/src" "$home/lib/*" "$tools"
fi
log "opensearch $v: installed in $home ($((SECONDS - t0)) s)"
