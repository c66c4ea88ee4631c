#!/usr/bin/env bash
# build.sh — builds Fjord's container images without a container engine or registry: the
# worker image (the `fjord` binary with S3 storage and the RocksDB state backend) and the
# operator image (`fjord-operator`), as OCI image layout tarballs that `ctr images import`,
# `docker load` (Docker >= 25) and `podman load` accept. docker/*.Dockerfile describe the same
# images for users with Docker; docs/images.md says what is inside.
#
#   scripts/images/build.sh                      release build, both images, into OUT
#   scripts/images/build.sh --profile dev --no-build
#                                                the debug binaries already in the target dir
#                                                (what the tests do; see docs/test-infrastructure.md)
#   scripts/images/build.sh --only worker --worker-package my-fjord-worker --worker-bin my-worker \
#       --worker-image example.com/me/my-worker:1.0
#                                                your own worker binary (examples/custom-worker)
#
# Options:
#   --profile NAME         cargo profile (default release); `dev` and `test` binaries are in debug/
#   --no-build             do not run cargo; use the binaries already in the target dir
#   --bin-dir DIR          take the binaries from DIR (implies --no-build; default: the profile's
#                          directory in CARGO_TARGET_DIR)
#   --out DIR              where the tarballs go (default $FJORD_CACHE/images/<profile>)
#   --only worker|operator build one image
#   --rootfs DIR           write the image's root filesystem tree to DIR instead of a tarball
#                          (with --only; what docker/*.Dockerfile do before `FROM scratch`)
#   --tag TAG              tag of both images (default: the workspace version, 0.1.0)
#   --worker-package P, --worker-bin B, --worker-image NAME
#                          the worker crate, binary and image name (default fjord-worker, fjord,
#                          fjord/fjord:TAG); the operator image is fjord/fjord-operator:TAG
#
# How an image is made: the binary, stripped of debug info, goes to /usr/local/bin; `ldd` lists
# the shared libraries it loads and `dpkg -S` the Debian packages that provide them; exactly those
# packages (at the host's installed versions) plus ca-certificates are fetched with
# `apt-get download` (cached in $FJORD_CACHE/images/debs) and unpacked with `dpkg-deb -x` (their
# maintainer scripts do not run: the CA bundle is concatenated here as update-ca-certificates
# would). /etc/passwd and /etc/group name the non-root user 65532 ("nonroot", no shell), /tmp is
# 1777 and /home/nonroot belongs to 65532. The tree becomes one gzip layer (sorted, mtime 0,
# owner root), and the config, manifest and index are written with jq, each named by its sha256.
# Prints one line per image: name, path, compressed and uncompressed size.
#
# Environment: CARGO_TARGET_DIR (default target/), FJORD_CACHE (default ~/.cache/fjord).
# Needs: cargo, apt-get, dpkg, jq, GNU tar, gzip, objcopy, sha256sum. Runs as any user.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${FJORD_CACHE:-$HOME/.cache/fjord}"
target="${CARGO_TARGET_DIR:-$root/target}"
multiarch="$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)"
# RocksDB is built from the rocksdb crate's sources and linked statically into the worker.
unset ROCKSDB_LIB_DIR ROCKSDB_STATIC

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'fjord images: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

profile=release build=1 out="" only="" tag="" bin_dir="" rootfs_out=""
NONROOT_ID=65532
worker_package=fjord-worker worker_bin=fjord worker_image=""
while (($#)); do
  case $1 in
    --profile) profile=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --bin-dir) bin_dir=$2; build=0; shift 2 ;;
    --rootfs) rootfs_out=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --worker-package) worker_package=$2; shift 2 ;;
    --worker-bin) worker_bin=$2; shift 2 ;;
    --worker-image) worker_image=$2; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case $only in "" | worker | operator) ;; *) die "--only takes worker or operator, not '$only'" ;; esac
[[ -z "$rootfs_out" || -n "$only" ]] || die "--rootfs needs --only worker or --only operator"
for tool in apt-get dpkg dpkg-deb jq tar gzip objcopy sha256sum ldd; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs what is needed)"
done
[[ -n "$tag" ]] || tag=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
[[ -n "$worker_image" ]] || worker_image="fjord/fjord:$tag"
operator_image="fjord/fjord-operator:$tag"
if [[ -z "$bin_dir" ]]; then
  case $profile in dev | test) bin_dir="$target/debug" ;; *) bin_dir="$target/$profile" ;; esac
fi
out="${out:-$cache/images/$profile}"
mkdir -p "$out" "$cache/images/debs"

want() { [[ -z "$only" || "$only" == "$1" ]]; }

if ((build)); then
  args=(build --locked --profile "$profile")
  want worker && args+=(-p "$worker_package" --bin "$worker_bin" --features "fjord-worker/s3,fjord-worker/hdfs,fjord-worker/rocksdb")
  want operator && args+=(-p fjord-operator --bin fjord-operator)
  log "cargo ${args[*]}"
  t0=$SECONDS
  (cd "$root" && cargo "${args[@]}")
  log "cargo build done in $((SECONDS - t0)) s"
fi

# deb_for LIBPATH : the installed package (name:arch) that owns LIBPATH. With merged /usr the
# loader's path (/lib/...) and the path dpkg registered (/usr/lib/...) may differ.
deb_for() {
  local p=$1 cand owner
  for cand in "$p" "/usr$p" "${p#/usr}" "$(readlink -f "$p")" "/usr$(readlink -f "$p")"; do
    owner=$(dpkg-query -S "$cand" 2>/dev/null | head -n 1) || continue
    [[ -n "$owner" ]] && { echo "${owner%%: *}"; return 0; }
  done
  die "no Debian package provides $p (dpkg -S); the image can only hold libraries from packages"
}

# fetch_deb PKG[:ARCH] : path of the .deb of the installed version, downloaded once.
fetch_deb() {
  local pkg=$1 version dir
  version=$(dpkg-query -W -f '${Version}' "$pkg")
  dir="$cache/images/debs/${pkg%%:*}_${version//:/%3a}"
  if ! compgen -G "$dir/*.deb" >/dev/null; then
    mkdir -p "$dir.partial"
    (cd "$dir.partial" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg=$version" >&2) ||
      die "apt-get download $pkg=$version failed (is the apt index current? apt-get update)"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
  compgen -G "$dir/*.deb" | head -n 1
}

# sha FILE : hex sha256.
sha() { sha256sum "$1" | cut -d' ' -f1; }

# blob FILE LAYOUT : move FILE into LAYOUT/blobs/sha256/<digest>; prints the digest.
blob() {
  local d; d=$(sha "$1")
  mv "$1" "$2/blobs/sha256/$d"
  echo "$d"
}

# make_image NAME BINARY ENTRYPOINT_NAME CMD_JSON PORTS_JSON TITLE OUTFILE EXTRA_PKGS ENV_JSON
# EXTRA_PKGS: Debian packages the image holds besides the binary's libraries (space-separated);
# ENV_JSON: environment entries (a JSON array of "NAME=value") after PATH and SSL_CERT_FILE.
make_image() {
  local name=$1 binary=$2 exe=$3 cmd=$4 ports=$5 title=$6 outfile=$7 extra=$8 env=$9
  [[ -x "$binary" ]] || die "$binary does not exist: build it first (or drop --no-build)"
  local work; work=$(mktemp -d "${TMPDIR:-/tmp}/fjord-image.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  local rootfs="$work/rootfs" layout="$work/layout"
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/home/nonroot" \
    "$layout/blobs/sha256"
  local libs pkgs=() lib pkg
  libs=$(ldd "$binary" | awk '/=> \// { print $3 } /^\t\// { print $1 }')
  for lib in $libs; do pkgs+=("$(deb_for "$lib")"); done
  # shellcheck disable=SC2086 # $extra is a space-separated list of package names
  mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" ca-certificates $extra | sort -u)
  log "$name: $(basename "$binary") needs ${pkgs[*]}"

  # The same binary, packages, script and image settings make the same tarball: reuse it.
  local key
  key=$( {
    sha256sum "${BASH_SOURCE[0]}"
    stat -c '%n %s %Y' "$binary"
    dpkg-query -W "${pkgs[@]}"
    printf '%s\n' "$name" "$exe" "$cmd" "$ports" "$title" "$tag" "$rootfs_out" "$env"
  } | sha256sum | cut -d' ' -f1)
  if [[ -z "$rootfs_out" && -f "$outfile" && "$(cat "$outfile.key" 2>/dev/null)" == "$key" ]]; then
    log "$name: unchanged, $outfile reused"
    cat "$outfile.line"
    return 0
  fi

  objcopy --strip-debug "$binary" "$rootfs/usr/local/bin/$exe"
  chmod 0755 "$rootfs/usr/local/bin/$exe"
  local bsize; bsize=$(stat -c %s "$rootfs/usr/local/bin/$exe")
  for pkg in "${pkgs[@]}"; do dpkg-deb -x "$(fetch_deb "$pkg")" "$rootfs"; done

  # What the packages' maintainer scripts would have done, and what they did not need.
  find "$rootfs/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
    >"$rootfs/etc/ssl/certs/ca-certificates.crt"
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -type l -delete 2>/dev/null || true
  rm -rf "$rootfs/usr/share/man" "$rootfs/usr/share/lintian" "$rootfs/usr/share/info" \
    "$rootfs/usr/sbin" "$rootfs/etc/ca-certificates.conf" "$rootfs/usr/share/locale"
  find "$rootfs" -depth -type d -empty ! -path "$rootfs/tmp" ! -path "$rootfs/home/nonroot" -delete
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  chmod 1777 "$rootfs/tmp"
  chmod 0700 "$rootfs/home/nonroot"
  if [[ -n "$rootfs_out" ]]; then
    # The Dockerfiles' mode: the tree only; `FROM scratch` + COPY make the image of it.
    rm -rf "$rootfs_out" && mkdir -p "$(dirname "$rootfs_out")" && cp -a "$rootfs" "$rootfs_out"
    [[ $(id -u) -ne 0 ]] || chown "$NONROOT_ID:$NONROOT_ID" "$rootfs_out/home/nonroot"
    printf '%s\t%s\t(root filesystem)\n' "$name" "$rootfs_out"
    return 0
  fi

  # One layer: everything owned by root, then /home/nonroot owned by the user.
  local tar_opts=(--sort=name --mtime=@0 --numeric-owner --format=gnu --no-acls --no-xattrs)
  (cd "$rootfs" && tar "${tar_opts[@]}" --owner=0 --group=0 --exclude=./home/nonroot \
    -cf "$work/layer.tar" ./*)
  (cd "$rootfs" && tar "${tar_opts[@]}" --owner=65532 --group=65532 --no-recursion \
    -rf "$work/layer.tar" ./home/nonroot)
  local diff_id usize
  diff_id=$(sha "$work/layer.tar")
  usize=$(stat -c %s "$work/layer.tar")
  gzip -n -6 "$work/layer.tar"
  local lsize layer
  lsize=$(stat -c %s "$work/layer.tar.gz")
  layer=$(blob "$work/layer.tar.gz" "$layout")

  jq -n --arg user 65532:65532 --arg exe "/usr/local/bin/$exe" --argjson cmd "$cmd" \
    --argjson ports "$ports" --arg diff "sha256:$diff_id" --arg title "$title" --arg tag "$tag" \
    --arg pkgs "${pkgs[*]}" --argjson env "$env" '{
      architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
      config: {
        User: $user, Entrypoint: [$exe], Cmd: $cmd, WorkingDir: "/",
        ExposedPorts: ($ports | map({key: "\(.)/tcp", value: {}}) | from_entries),
        Env: (["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"] + $env),
        Labels: {"org.opencontainers.image.title": $title,
                 "org.opencontainers.image.version": $tag,
                 "org.opencontainers.image.source": "https://github.com/fjord/fjord",
                 "dev.fjord.debian-packages": $pkgs}
      },
      rootfs: {type: "layers", diff_ids: [$diff]},
      history: [{created: "1970-01-01T00:00:00Z", created_by: "scripts/images/build.sh"}]
    }' >"$work/config.json"
  local csize config
  csize=$(stat -c %s "$work/config.json")
  config=$(blob "$work/config.json" "$layout")
  jq -cn --arg config "sha256:$config" --argjson csize "$csize" --arg layer "sha256:$layer" \
    --argjson lsize "$lsize" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $config, size: $csize},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $layer, size: $lsize}]
    }' >"$work/manifest.json"
  local msize manifest
  msize=$(stat -c %s "$work/manifest.json")
  manifest=$(blob "$work/manifest.json" "$layout")
  # containerd names the image by io.containerd.image.name, Docker and Podman by ref.name.
  local full="$name"
  [[ "${name%%/*}" == *.* || "${name%%/*}" == *:* || "${name%%/*}" == localhost ]] || full="docker.io/$name"
  jq -cn --arg m "sha256:$manifest" --argjson size "$msize" --arg full "$full" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $size,
        platform: {architecture: "amd64", os: "linux"},
        annotations: {"io.containerd.image.name": $full, "org.opencontainers.image.ref.name": $full}}]
    }' >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  (cd "$layout" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    -cf "$outfile.partial" oci-layout index.json blobs)
  mv "$outfile.partial" "$outfile"
  printf '%s\t%s\tlayer %s bytes (gzip), %s bytes (tar), binary %s bytes, manifest sha256:%s\n' \
    "$name" "$outfile" "$lsize" "$usize" "$bsize" "$manifest" | tee "$outfile.line"
  echo "$key" >"$outfile.key"
}

if want worker; then
  # RocksDB is linked statically: its version banner is in the binary when the backend is.
  if ! LC_ALL=C grep -qaF 'RocksDB version: ' "$bin_dir/$worker_bin"; then
    die "$bin_dir/$worker_bin has no RocksDB in it: build it with --features fjord-worker/s3,fjord-worker/hdfs,fjord-worker/rocksdb"
  fi
  # jemalloc preloaded, as in Flink's image: with glibc's malloc, RocksDB's memtable arenas and
  # compaction buffers fragment across its per-thread arenas and the process holds 30+ MiB more
  # at 10 M keys (173 against 140 MiB peak RSS; BENCHMARKS.md). LD_PRELOAD= (empty) turns it off.
  # It serves RocksDB's C++ malloc calls; the binary's Rust allocations go to its compiled-in mimalloc.
  [[ -e "/usr/lib/$multiarch/libjemalloc.so.2" ]] ||
    die "libjemalloc2 is not installed (scripts/install-deps.sh installs it); the worker image preloads it"
  make_image "$worker_image" "$bin_dir/$worker_bin" fjord '["list"]' '[8081,6123,6121,6122,9249]' \
    "Fjord worker ($worker_package/$worker_bin)" "$out/worker.oci.tar" libjemalloc2 \
    "[\"LD_PRELOAD=/usr/lib/$multiarch/libjemalloc.so.2\"]"
fi
if want operator; then
  make_image "$operator_image" "$bin_dir/fjord-operator" fjord-operator '[]' '[8080]' \
    "Fjord operator" "$out/operator.oci.tar" "" '[]'
fi
