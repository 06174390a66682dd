#!/usr/bin/env bash
# Builds the project's container images, daemonless with podman (no Docker engine, no
# registry), or with docker for users who have one. One source of truth for each image:
#
#   base     a minimal Debian bookworm rootfs (debootstrap, Debian's packages) imported
#            and tagged as the public base the Dockerfiles name (ARG BASE_IMAGE); podman
#            only: docker users pull the public image of that name instead
#   pause    images/pause/Dockerfile + build/pause/linux/pause.c of k8s.io/kubernetes@v$KUBERNETES_VERSION
#   airflow  images/airflow/Dockerfile + uv.lock (extras airflow, pipeline, spark-api) + src/ + dags/
#            (the product only: rig/ contributes its members' pyproject.toml, no code)
#   airflow-local  the same with the extra `local` (chdb, the real node's ClickHouse stand-in);
#            built on demand (make node-up), not by default
#   spark    images/spark/Dockerfile + uv.lock (extra spark) + src/ + spark-jobs/ + the jars of
#            hack/maven/spark/pom.xml (.tools/spark-jars)
#   spark-operator-standin  images/spark-operator-standin/Dockerfile: the spark image plus the
#            stand-in distribution (rig/spark-operator-standin) from uv.lock; a TEST STAND-IN
#
# Image tags come from what is installed: Airflow's and pyspark's versions in uv.lock,
# pause's TAG in the Kubernetes module; tests/images checks the chart's defaults equal them.
#
# usage: hack/build-images.sh [build] [base|pause|airflow|airflow-local|spark|spark-operator-standin ...]
#                                 (default: base pause airflow spark spark-operator-standin)
#        hack/build-images.sh export [pause|airflow|airflow-local|spark|spark-operator-standin ...]
#                                                    OCI archives for containerd
#        hack/build-images.sh names                  "<name> <reference>" per image
#        hack/build-images.sh clean                  remove the images (not the base), their
#                                                    dangling build layers, contexts, exports
#        hack/build-images.sh push [airflow|spark ...]   docker: tag as $IMAGES_REGISTRY/<ref>, push
#        hack/build-images.sh kind-load [airflow|spark ...]  docker: kind load docker-image
#
# Incremental: an image is rebuilt only when the hash of its inputs (staged build context,
# Dockerfile, build args, base image ID) differs from the one recorded at its last build
# (.tools/images/stamps) or the image is gone; layers are cached by the engine as well.
#
# env: IMAGES_ENGINE=podman|docker   IMAGES_FORCE=1 (build even when unchanged)
#      IMAGES_REFRESH_BASE=1 (bootstrap the base again, e.g. for a Debian point release)
#      DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR (default: this machine's apt sources)
#      BUILD_CA_BUNDLE (CA bundle for the builds' downloads; default: the system bundle;
#      mounted during the build only, never part of an image)
#      IMAGES_REGISTRY, KIND_CLUSTER (docker targets)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../versions.env
source "$ROOT/versions.env"

IMAGES_DIR=$ROOT/.tools/images
STAMPS=$IMAGES_DIR/stamps
EXPORT_DIR=$IMAGES_DIR/export
ENGINE=${IMAGES_ENGINE:-podman}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
BASE_SUITE=bookworm
# What the public python:3.11-slim-bookworm offers the Dockerfiles: python3 with venv, CAs.
BASE_PACKAGES=python3,python3-venv,ca-certificates
# podman as measured working here: cgroupfs, runc, rlimits that need no raise.
PODMAN=(podman --cgroup-manager=cgroupfs)
PODMAN_BUILD=(build --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
  --network host --pull=never --layers --format oci)

log() { echo "[build-images] $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- names -------------------------------------------------------------------------------
lock_version() { # lock_version PACKAGE: its version in uv.lock
  python3 - "$1" <<'EOF'
import sys, tomllib
with open("uv.lock", "rb") as f:
    lock = tomllib.load(f)
print(next(p["version"] for p in lock["package"] if p["name"] == sys.argv[1]))
EOF
}

pause_dir() { # the Kubernetes module's source (the Go module cache), downloaded if needed
  GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

pause_tag() { sed -n 's/^TAG ?= *//p' "$(pause_dir)/build/pause/Makefile"; }

# The reference the chart uses (short) and the fully qualified one containerd and kubelet
# resolve it to (a short name means docker.io, whatever the engine that built it).
declare -A REF
resolve_names() { # resolve_names NAME...: REF[name] for these (pause needs the Go module)
  local n
  for n in "$@"; do
    case $n in
      base) REF[base]=$BASE_IMAGE ;;
      airflow) REF[airflow]=orders-etl/airflow:$(lock_version apache-airflow) ;;
      # The Airflow image plus chdb (the `local` extra): the real node's ClickHouse stand-in.
      airflow-local) REF[airflow-local]=orders-etl/airflow-local:$(lock_version apache-airflow) ;;
      spark) REF[spark]=orders-etl/spark:$(lock_version pyspark) ;;
      # Built FROM the spark image: its name is needed with it.
      spark-operator-standin)
        REF[spark]=orders-etl/spark:$(lock_version pyspark)
        REF[spark-operator-standin]=orders-etl/spark-operator-standin:$(lock_version pyspark) ;;
      pause) REF[pause]=localhost/orders-etl/pause:$(pause_tag) ;;
      *) die "unknown image '$n' (base, pause, airflow, airflow-local, spark, spark-operator-standin)" ;;
    esac
  done
}
qualified() { # docker.io/... for a short name, the name itself otherwise
  local ref=$1 first=${1%%/*}
  if [[ $ref != */* ]]; then
    echo "docker.io/library/$ref"
  elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
    echo "$ref"
  else
    echo "docker.io/$ref"
  fi
}
local_ref() { # what the engine tags: podman the qualified name, docker the short one
  if [[ $ENGINE == podman ]]; then qualified "${REF[$1]}"; else echo "${REF[$1]}"; fi
}

# ---- engine helpers ----------------------------------------------------------------------
engine() { if [[ $ENGINE == podman ]]; then "${PODMAN[@]}" "$@"; else docker "$@"; fi; }
image_id() { engine image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

stamp_ok() { # stamp_ok NAME HASH: the recorded build of NAME had HASH and still exists
  local name=$1 hash=$2 rec_hash rec_id
  [[ ${IMAGES_FORCE:-} == 1 ]] && return 1
  [[ -f $STAMPS/$name ]] || return 1
  read -r rec_hash rec_id <"$STAMPS/$name"
  [[ $rec_hash == "$hash" && -n $rec_id && $(image_id "$(local_ref "$name")") == "$rec_id" ]]
}
write_stamp() { mkdir -p "$STAMPS"; echo "$2 $(image_id "$(local_ref "$1")")" >"$STAMPS/$1"; }

# ---- base (podman only) ------------------------------------------------------------------
apt_uri() { # apt_uri security|main: this machine's Debian mirror for that archive
  python3 - "$1" <<'EOF'
import glob, re, sys
want_security = sys.argv[1] == "security"
uris = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for block in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and fields.get("uris"):
            uris.append((fields["uris"][0], fields.get("suites", [])))
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        parts = re.sub(r"\[[^]]*\]", "", line).split()
        if len(parts) >= 3 and parts[0] == "deb":
            uris.append((parts[1], [parts[2]]))
for uri, suites in uris:
    if any(s.endswith("-security") for s in suites) == want_security:
        print(uri.rstrip("/"))
        break
else:
    sys.exit(f"no Debian {'security ' if want_security else ''}mirror in /etc/apt sources")
EOF
}

build_base() {
  [[ $ENGINE == podman ]] || { log "base: docker pulls the public $BASE_IMAGE"; return 0; }
  local ref hash rootfs mirror security
  ref=$(local_ref base)
  hash=$(printf '%s\n' "$BASE_SUITE" "$BASE_PACKAGES" "$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-12)" |
    sha256sum | cut -c1-16)
  # The base is bootstrapped once and kept: later builds start from the same image
  # (IMAGES_REFRESH_BASE=1 bootstraps again). Editing this script does not force it.
  if [[ ${IMAGES_REFRESH_BASE:-} != 1 && -n $(image_id "$ref") ]]; then
    log "base: $ref present ($(image_id "$ref" | cut -c1-12)), kept"
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (make images-deps)"
  mirror=${DEBIAN_MIRROR:-$(apt_uri main)}
  security=${DEBIAN_SECURITY_MIRROR:-$(apt_uri security)}
  rootfs=$IMAGES_DIR/base/rootfs
  log "base: debootstrap --variant=minbase $BASE_SUITE (+$BASE_PACKAGES)"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase --components=main --include="$BASE_PACKAGES" \
    "$BASE_SUITE" "$rootfs" "$mirror" >"$IMAGES_DIR/base/debootstrap.log" 2>&1 ||
    { tail -20 "$IMAGES_DIR/base/debootstrap.log" >&2; die "debootstrap failed"; }
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $BASE_SUITE main
deb $mirror $BASE_SUITE-updates main
deb $security $BASE_SUITE-security main
EOF
  # Like Debian's slim images: no docs, man pages or locales from later installs.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/90-no-recommends"
  # Point-release and security updates of what debootstrap installed.
  mount -t proc proc "$rootfs/proc"
  trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
  chroot "$rootfs" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -y -qq upgrade >/dev/null
  chroot "$rootfs" apt-get clean
  umount "$rootfs/proc"
  trap - EXIT
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/* \
    "$rootfs"/usr/share/info/* "$rootfs"/tmp/* "$rootfs"/root/.cache
  # Files only: packages' maintainer scripts expect the directories (man1 for java).
  find "$rootfs/usr/share/man" -type f -delete
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
  # The engine provides these at run time; the machine's own must not ship.
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
  : >"$rootfs/etc/resolv.conf"
  echo localhost >"$rootfs/etc/hostname"
  tar -C "$rootfs" --numeric-owner -cf - . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.opencontainers.image.description=\"Debian $BASE_SUITE $(cat "$rootfs/etc/debian_version") minbase + $BASE_PACKAGES, bootstrapped locally as a stand-in for $BASE_IMAGE\"" \
    --change "LABEL dev.orders-etl.inputs=$hash" \
    - "$ref" >/dev/null
  log "base: $ref = $(image_id "$ref" | cut -c1-12) (Debian $(cat "$rootfs/etc/debian_version"))"
  rm -rf "$rootfs"
}

# ---- build contexts ------------------------------------------------------------------------
files_under() { # tracked and untracked-not-ignored files under the given paths
  git -C "$ROOT" ls-files --cached --others --exclude-standard -- "$@" |
    while IFS= read -r f; do [[ -f $ROOT/$f ]] && echo "$f"; done
}

dockerfile_dir() { # dockerfile_dir NAME: the folder under images/ with NAME's Dockerfile
  case $1 in airflow-local) echo airflow ;; *) echo "$1" ;; esac
}

stage_context() { # stage_context NAME: a build context with the repository's layout
  local ctx=$IMAGES_DIR/context/$1 name f
  name=$(dockerfile_dir "$1")
  rm -rf "$ctx" && mkdir -p "$ctx"
  case $name in
    pause)
      mkdir -p "$ctx/images/pause"
      cp "$(pause_dir)/build/pause/linux/pause.c" "$ctx/pause.c"
      cp images/pause/Dockerfile "$ctx/images/pause/Dockerfile"
      ;;
    airflow | spark | spark-operator-standin)
      # The product images get the workspace's rig members as pyproject.toml only (uv
      # reads them to know the workspace); the stand-in's image gets its code too.
      local paths=(pyproject.toml uv.lock README.md "images/$name")
      case $name in
        airflow) paths+=(src dags) ;;
        spark) paths+=(src spark-jobs) ;;
        spark-operator-standin) paths+=(rig/spark-operator-standin) ;;
      esac
      while IFS= read -r f; do
        [[ $f == *.pyc || $f == */__pycache__/* ]] && continue
        mkdir -p "$ctx/$(dirname "$f")" && cp -p "$f" "$ctx/$f"
      done < <(files_under "${paths[@]}" rig/*/pyproject.toml)
      if [[ $name == spark ]]; then
        compgen -G "$ROOT/.tools/spark-jars/*.jar" >/dev/null ||
          die "no jars in .tools/spark-jars: run hack/install-tools.sh spark-jars"
        mkdir -p "$ctx/.tools/spark-jars"
        cp -p "$ROOT"/.tools/spark-jars/*.jar "$ctx/.tools/spark-jars/"
      fi
      ;;
  esac
  echo "$ctx"
}

context_hash() { # context_hash CTX ARGS...: content + modes of every file, plus ARGS
  (
    cd "$1" && shift
    find . -type f -printf '%m %p\n' | LC_ALL=C sort
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    printf '%s\n' "$@"
  ) | sha256sum | cut -c1-16
}

build_args() { # build_args NAME: --build-arg list for NAME
  local args=(--build-arg "BASE_IMAGE=$(local_ref base)")
  case $1 in
    pause) args+=(--build-arg "PAUSE_VERSION=v$(pause_tag)-v$KUBERNETES_VERSION") ;;
    airflow) args+=(--build-arg "UV_VERSION=$UV_VERSION" --build-arg "AIRFLOW_VERSION=${REF[airflow]##*:}") ;;
    airflow-local)
      args+=(--build-arg "UV_VERSION=$UV_VERSION" --build-arg "AIRFLOW_VERSION=${REF[airflow-local]##*:}"
        --build-arg "EXTRAS=airflow pipeline spark-api local") ;;
    spark) args+=(--build-arg "UV_VERSION=$UV_VERSION" --build-arg "SPARK_VERSION=${REF[spark]##*:}") ;;
    spark-operator-standin)
      args+=(--build-arg "UV_VERSION=$UV_VERSION" --build-arg "SPARK_VERSION=${REF[spark]##*:}"
        --build-arg "SPARK_IMAGE=$(local_ref spark)") ;;
  esac
  printf '%s\n' "${args[@]}"
}

build_image() {
  local name=$1 ctx hash ref start args=() ca extra=()
  ref=$(local_ref "$name")
  ctx=$(stage_context "$name")
  mapfile -t args < <(build_args "$name")
  hash=$(context_hash "$ctx" "${args[@]}" "base=$(image_id "$(local_ref base)")")
  if [[ $name == spark-operator-standin ]]; then # rebuilt when the spark image changes
    [[ -n $(image_id "$(local_ref spark)") ]] || die "$name: build the spark image first"
    hash=$(printf '%s spark=%s' "$hash" "$(image_id "$(local_ref spark)")" | sha256sum | cut -c1-16)
  fi
  if stamp_ok "$name" "$hash"; then
    log "$name: $ref up to date (inputs $hash)"
    return 0
  fi
  log "$name: building $ref (inputs $hash)"
  start=$SECONDS
  [[ $name == pause ]] ||
    args+=(--build-arg "VCS_REF=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)")
  if [[ $ENGINE == podman ]]; then
    ca=${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
    if [[ $name != pause && -f $ca ]]; then
      extra+=(--volume "$ca:/run/build-ca.crt:ro"
        --build-arg SSL_CERT_FILE=/run/build-ca.crt --build-arg PIP_CERT=/run/build-ca.crt)
    fi
    "${PODMAN[@]}" "${PODMAN_BUILD[@]}" "${extra[@]}" "${args[@]}" \
      -f "$ctx/images/$(dockerfile_dir "$name")/Dockerfile" -t "$ref" "$ctx"
  else
    docker build "${args[@]}" -f "$ctx/images/$(dockerfile_dir "$name")/Dockerfile" -t "$ref" "$ctx"
  fi
  write_stamp "$name" "$hash"
  log "$name: built $ref in $((SECONDS - start)) s, $(engine image inspect --format '{{.Size}}' "$ref" |
    awk '{printf "%.0f MB", $1 / 1e6}')"
}

# ---- export, push, kind ----------------------------------------------------------------------
export_image() { # OCI archive named by the image ID: re-exported only when the image changed
  local name=$1 ref id archive
  [[ $ENGINE == podman ]] || die "export: podman only (docker users: docker save)"
  ref=$(local_ref "$name")
  id=$(image_id "$ref")
  [[ -n $id ]] || die "$name: $ref not built (make images)"
  archive=$EXPORT_DIR/$name.oci.tar
  mkdir -p "$EXPORT_DIR"
  if [[ -f $archive && -f $archive.id && $(cat "$archive.id") == "$id" ]]; then
    log "$name: $archive up to date"
  else
    rm -f "$archive" "$archive.id"
    "${PODMAN[@]}" save --format oci-archive -o "$archive.tmp" "$ref"
    mv "$archive.tmp" "$archive" && echo "$id" >"$archive.id"
    log "$name: $archive ($(du -m "$archive" | cut -f1) MB)"
  fi
  # The archive names the image by its qualified reference: `ctr -n k8s.io images import
  # <archive>` keeps it (measured with Debian's containerd 1.6.20), which is what kubelet asks for.
  printf '%s\t%s\t%s\n' "$name" "$ref" "$archive" >>"$EXPORT_DIR/images.tsv.tmp"
}

push_image() {
  [[ $ENGINE == docker ]] || die "push: IMAGES_ENGINE=docker only"
  [[ -n ${IMAGES_REGISTRY:-} ]] || die "push: set IMAGES_REGISTRY (e.g. registry.example.com/team)"
  local src=${REF[$1]} dst=${IMAGES_REGISTRY%/}/${REF[$1]}
  docker tag "$src" "$dst" && docker push "$dst"
}

kind_load() {
  [[ $ENGINE == docker ]] || die "kind-load: IMAGES_ENGINE=docker only"
  "${KIND:-kind}" load docker-image "${REF[$1]}" --name "${KIND_CLUSTER:-kind}"
}

# ---- main ------------------------------------------------------------------------------------
cmd=build
case ${1:-} in build | export | names | push | kind-load | clean) cmd=$1; shift ;; esac
names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  case $cmd in
    build | names) names=(base pause airflow spark spark-operator-standin) ;;
    export | clean) names=(pause airflow spark spark-operator-standin) ;;
    *) names=(airflow spark) ;;
  esac
fi
resolve_names base "${names[@]}"

case $cmd in
  names)
    for n in "${names[@]}"; do printf '%s\t%s\t%s\n' "$n" "${REF[$n]}" "$(qualified "${REF[$n]}")"; done
    ;;
  build)
    total=$SECONDS
    # Every image starts from the base: make sure it is there even when not asked for.
    [[ " ${names[*]} " == *" base "* ]] || [[ -n $(image_id "$(local_ref base)") ]] || names=(base "${names[@]}")
    for n in "${names[@]}"; do
      if [[ $n == base ]]; then build_base; else build_image "$n"; fi
    done
    # Every rebuild leaves the previous build's layers dangling (1-3 GB each; 34 GB had
    # piled up here and filled the disk). The images' own layers are parents, so they stay.
    engine image prune -f >/dev/null
    log "done in $((SECONDS - total)) s"
    ;;
  export)
    rm -f "$EXPORT_DIR/images.tsv.tmp"
    for n in "${names[@]}"; do export_image "$n"; done
    mv "$EXPORT_DIR/images.tsv.tmp" "$EXPORT_DIR/images.tsv"
    ;;
  clean)
    for n in "${names[@]}"; do
      [[ -z $(image_id "$(local_ref "$n")") ]] || engine rmi -f "$(local_ref "$n")" >/dev/null
      rm -f "$STAMPS/$n"
    done
    engine image prune -f >/dev/null
    rm -rf "$IMAGES_DIR/context" "$EXPORT_DIR"
    ;;
  push) for n in "${names[@]}"; do push_image "$n"; done ;;
  kind-load) for n in "${names[@]}"; do kind_load "$n"; done ;;
esac
