#!/usr/bin/env bash
# Installs the project's pinned Go-built toolchain into .tools/ (or $TOOLS_DIR):
#   helm, kwok (+ its stage configs), etcd, kube-apiserver, kube-controller-manager,
#   kube-scheduler, kubelet, kube-proxy, kubectl, CoreDNS (the real node's DNS), the Argo CD CRDs and the argocd multicall binary
#   (application controller, repo-server) from the argo-cd module, versitygw
#   (S3 server), and the Maven jars of hack/maven/*/pom.xml (Kafka broker, Spark jars).
# Every version comes from versions.env. Idempotent: a tool whose stamp matches its
# pinned version is skipped, so a warm run costs a few stat calls.
#
# Usage: hack/install-tools.sh [TOOL ...]   (default: all; TOOL as in ALL below)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$ROOT/versions.env"
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS_DIR/bin
STAMPS=$TOOLS_DIR/stamps
SRC=$TOOLS_DIR/src
mkdir -p "$BIN" "$STAMPS" "$SRC" "$TOOLS_DIR/share"

export GOFLAGS="-mod=mod -trimpath"
export CGO_ENABLED=0
export GOTOOLCHAIN=local

log() { printf '[install-tools] %s\n' "$*" >&2; }

# run_step NAME COMMAND...: runs one install step; on failure names the tool and the retry.
run_step() {
  local name=$1; shift
  local t0=$SECONDS rc
  # In a subshell with errexit: a function called as an `if` condition runs with -e
  # ignored, so a failed build would have gone on to stamp.
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  if [[ $rc -ne 0 ]]; then
    log "FAILED: $name. Nothing partial was stamped; retry with: hack/install-tools.sh $name"
    exit 1
  fi
  log "$name: done in $((SECONDS - t0)) s"
}

installed() { [[ -f "$STAMPS/$1-$2" ]]; }
stamp() { rm -f "$STAMPS/$1"-*; touch "$STAMPS/$1-$2"; }

# reports PATTERN COMMAND...: whether COMMAND's output has a line matching PATTERN.
# Captured first: with pipefail, `cmd | grep -q` fails when grep exits early and the
# command dies of SIGPIPE writing the rest (etcd --version did, in CI).
reports() {
  local pattern=$1 out; shift
  out=$("$@" 2>&1) || return 1
  grep -q -- "$pattern" <<<"$out"
}

install_helm() {
  # "+kube": the build stamps the Kubernetes version too (a helm built before did not).
  installed helm "$HELM_VERSION+kube" && return 0
  # The ldflags of helm's Makefile: the full version (otherwise it reports "v3.22") and
  # the Kubernetes version its client-go module is for (client-go v0.X.Y -> 1.X), which
  # `helm template` and `helm lint` use as .Capabilities.KubeVersion without a cluster
  # (otherwise v1.20.0, and charts with a kubeVersion constraint fail to render).
  local gomod client_go major minor pkg=helm.sh/helm/v3
  gomod=$(go mod download -json "$pkg@v$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  client_go=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")
  [[ $client_go =~ ^v0\.([0-9]+)\. ]] || { log "no k8s.io/client-go version in $gomod"; return 1; }
  major=1 minor=${BASH_REMATCH[1]}
  log "helm $HELM_VERSION: client-go $client_go, default Kubernetes version $major.$minor"
  # Built aside, then renamed over the old binary: a helm running meanwhile (tests share
  # .tools) keeps its file, and nobody ever runs a half-written one.
  local out
  out=$(mktemp -d "$TOOLS_DIR/.helm-build.XXXXXX")
  GOBIN=$out go install -ldflags "-s -w -X $pkg/internal/version.version=v$HELM_VERSION -X $pkg/internal/version.gitTreeState=clean \
    -X $pkg/pkg/lint/rules.k8sVersionMajor=$major -X $pkg/pkg/lint/rules.k8sVersionMinor=$minor \
    -X $pkg/pkg/chartutil.k8sVersionMajor=$major -X $pkg/pkg/chartutil.k8sVersionMinor=$minor" \
    "$pkg/cmd/helm@v$HELM_VERSION"
  mv -f "$out/helm" "$BIN/helm"
  rmdir "$out"
  stamp helm "$HELM_VERSION+kube"
}

install_kwok() {
  installed kwok "$KWOK_VERSION" && return 0
  # The version is stamped like kwok's own Makefile does, so `kwok --version` is honest.
  GOBIN=$BIN go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  # The stage configs that make kwok nodes Ready (and keep their leases fresh) and pods
  # Running, Succeeded and deleted.
  rm -rf "$TOOLS_DIR/share/kwok" && mkdir -p "$TOOLS_DIR/share/kwok"
  cp "$dir/kustomize/stage/node/fast/node-initialize.yaml" \
     "$dir/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$dir/kustomize/stage/pod/fast/pod-"*.yaml "$TOOLS_DIR/share/kwok/"
  chmod -R u+w "$TOOLS_DIR/share/kwok"
  stamp kwok "$KWOK_VERSION"
}

# A throwaway wrapper module: `go build` of a main package that lives in a module whose
# go.mod uses path replaces (k8s.io/kubernetes, etcd) needs those replaces restated as
# module versions in the main module.
write_wrapper() { # DIR GO_DIRECTIVE REQUIRE_LINES REPLACE_LINES
  mkdir -p "$1"
  {
    echo "module localplatform/toolbuild"
    echo
    echo "go $2"
    echo
    echo "require ("; printf '%s\n' "$3"; echo ")"
    if [[ -n "$4" ]]; then echo; echo "replace ("; printf '%s\n' "$4"; echo ")"; fi
  } > "$1/go.mod"
}

install_kubernetes() {
  local v=$KUBERNETES_VERSION
  # kube-proxy joined the build later: a stamp without it rebuilds (Go's cache keeps it quick).
  installed kubernetes "$v" && [[ -x $BIN/kube-proxy ]] && return 0
  local gomod wrapper=$SRC/kubernetes-v$v
  gomod=$(go mod download -json "k8s.io/kubernetes@v$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local godirective replaces
  godirective=$(awk '$1=="go"{print $2; exit}' "$gomod")
  # Every staging module `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.<minor>.<patch>`.
  replaces=$(awk -v sv="v0.${v#*.}" '$2=="=>" && $3 ~ /^\.\/staging\// {printf "\t%s => %s %s\n", $1, $1, sv}' "$gomod")
  [[ $(wc -l <<<"$replaces") -ge 25 ]] || { log "kubernetes: found too few staging replaces in $gomod"; return 1; }
  write_wrapper "$wrapper" "$godirective" "	k8s.io/kubernetes v$v" "$replaces"
  local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$wrapper" && go build -ldflags "$ld" -o "$BIN/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubelet \
      k8s.io/kubernetes/cmd/kube-proxy \
      k8s.io/kubernetes/cmd/kubectl)
  reports "^Kubernetes v$v\$" "$BIN/kube-apiserver" --version || { log "kube-apiserver does not report v$v"; return 1; }
  stamp kubernetes "$v"
}

install_etcd() {
  local v=$ETCD_VERSION
  installed etcd "$v" && return 0
  local wrapper=$SRC/etcd-v$v gomod
  gomod=$(go mod download -json "go.etcd.io/etcd/server/v3@v$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # server/v3's go.mod replaces its sibling modules by path; require them at the same tag.
  local requires
  requires=$(awk -v ver="v$v" '$2=="=>" && $3 ~ /^\.\.\// {printf "\t%s %s\n", $1, ver}' "$gomod")
  write_wrapper "$wrapper" "$(awk '$1=="go"{print $2; exit}' "$gomod")" \
    "$(printf '\tgo.etcd.io/etcd/server/v3 v%s\n%s' "$v" "$requires")" ""
  (cd "$wrapper" && go build -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$v" \
      -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  reports "^etcd Version: $v\$" "$BIN/etcd" --version || { log "etcd does not report $v"; return 1; }
  stamp etcd "$v"
}

install_argocd_crds() {
  local v=$ARGOCD_VERSION
  installed argocd-crds "$v" && return 0
  local dir
  dir=$(go mod download -json "github.com/argoproj/argo-cd/v2@v$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$TOOLS_DIR/share/argocd-crds" && mkdir -p "$TOOLS_DIR/share/argocd-crds"
  cp "$dir"/manifests/crds/*-crd.yaml "$TOOLS_DIR/share/argocd-crds/"
  chmod -R u+w "$TOOLS_DIR/share/argocd-crds"
  stamp argocd-crds "$v"
}

# The Argo CD multicall binary (ARGOCD_BINARY_NAME picks the component:
# argocd-application-controller, argocd-repo-server, ...) and the module's core-install
# manifest, from which localplatform.argocd applies the CRDs, ConfigMaps and RBAC.
# argo-cd's go.mod pins its Kubernetes libraries with module-version replaces, which only
# the main module's go.mod honours: the wrapper restates them.
# Stamped as argocd-bin: a stamp "argocd-<v>" would be removed with "argocd-crds-<v>".
install_argocd() {
  local v=$ARGOCD_VERSION
  installed argocd-bin "$v" && return 0
  local wrapper=$SRC/argocd-v$v json dir gomod replaces
  json=$(go mod download -json "github.com/argoproj/argo-cd/v2@v$v")
  dir=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Dir"])' "$json")
  gomod=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["GoMod"])' "$json")
  replaces=$(awk '/^replace \($/{r=1; next} r && /^\)/{r=0} r && $2=="=>" {print "\t" $0}' "$gomod" | sed 's/^\t\t*/\t/')
  [[ $(wc -l <<<"$replaces") -ge 20 ]] || { log "argocd: found too few replaces in $gomod"; return 1; }
  write_wrapper "$wrapper" "$(awk '$1=="go"{print $2; exit}' "$gomod")" \
    "	github.com/argoproj/argo-cd/v2 v$v" "$replaces"
  # Version stamped like argo-cd's Makefile (common.version etc.); the module zip carries
  # no commit, so the binary reports v$v+unknown.
  local pkg=github.com/argoproj/argo-cd/v2/common
  local ld="-s -w -X $pkg.version=$v -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ld+=" -X $pkg.gitTreeState=clean -X $pkg.kubectlVersion=$(awk '$1=="k8s.io/client-go" && $2 ~ /^v/ {print $2; exit}' "$gomod")"
  (cd "$wrapper" && go build -ldflags "$ld" -o "$BIN/argocd.tmp" github.com/argoproj/argo-cd/v2/cmd)
  ARGOCD_BINARY_NAME=argocd reports "v$v" "$BIN/argocd.tmp" version --client --short \
    || { log "argocd does not report v$v"; return 1; }
  mv "$BIN/argocd.tmp" "$BIN/argocd"
  mkdir -p "$TOOLS_DIR/share/argocd"
  cp "$dir/manifests/core-install.yaml" "$TOOLS_DIR/share/argocd/core-install.yaml"
  chmod u+w "$TOOLS_DIR/share/argocd/core-install.yaml"
  stamp argocd-bin "$v"
}

# CoreDNS for the real node (make node-up): the stock plugin set (kubernetes, forward,
# cache, ...). Its go.mod has no replaces, so go install builds it as released.
install_coredns() {
  local v=$COREDNS_VERSION
  installed coredns "$v" && return 0
  GOBIN=$BIN go install -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v$v" \
    "github.com/coredns/coredns@v$v"
  reports "^CoreDNS-$v\$" "$BIN/coredns" -version || { log "coredns does not report $v"; return 1; }
  stamp coredns "$v"
}

install_versitygw() {
  installed versitygw "$VERSITYGW_VERSION" && return 0
  GOBIN=$BIN go install -ldflags "-s -w" "github.com/versity/versitygw/cmd/versitygw@v$VERSITYGW_VERSION"
  stamp versitygw "$VERSITYGW_VERSION"
}

# Only for users with Docker (make kind-*): not in ALL.
install_kind() {
  installed kind "$KIND_VERSION" && return 0
  GOBIN=$BIN go install -ldflags "-s -w" "sigs.k8s.io/kind@v$KIND_VERSION"
  stamp kind "$KIND_VERSION"
}

# maven_jars NAME DEST: copy-dependencies of hack/maven/NAME/pom.xml into DEST; the
# stamp is the pom's hash, so editing a coordinate re-resolves.
maven_jars() {
  local name=$1 dest=$2 pom=$ROOT/hack/maven/$1/pom.xml hash
  hash=$(sha256sum "$pom" | cut -c1-16)
  installed "maven-$name" "$hash" && return 0
  rm -rf "$dest.tmp"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dest.tmp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  stamp "maven-$name" "$hash"
}

install_helm_docs() {
  installed helm-docs "$HELM_DOCS_VERSION" && return 0
  # Stamp the version like helm-docs' own release build does (main.version).
  GOBIN=$BIN go install -ldflags "-s -w -X main.version=$HELM_DOCS_VERSION" \
    "github.com/norwoodj/helm-docs/cmd/helm-docs@v$HELM_DOCS_VERSION"
  stamp helm-docs "$HELM_DOCS_VERSION"
}

ALL=(helm kwok etcd kubernetes argocd-crds argocd helm-docs versitygw kafka spark-jars)
# Not in ALL: kind (users with Docker), coredns (the real node, make node-up).
want=("$@"); [[ ${#want[@]} -gt 0 ]] || want=("${ALL[@]}")
for tool in "${want[@]}"; do
  # A tool is known if install() can install it: Maven jars, or an install_<tool> function.
  [[ $tool == kafka || $tool == spark-jars ]] || declare -F "install_${tool//-/_}" >/dev/null \
    || { log "unknown tool '$tool' (known: ${ALL[*]} kind coredns)"; exit 2; }
done

# install TOOL: its install step (run_step names it and its time).
install() {
  case $1 in
    kafka) run_step kafka maven_jars kafka "$TOOLS_DIR/kafka/libs" ;;
    spark-jars) run_step spark-jars maven_jars spark "$TOOLS_DIR/spark-jars" ;;
    *) run_step "$1" "install_${1//-/_}" ;;
  esac
}

# The tools are independent, and a cold install spends much of its time downloading
# modules and jars and linking single-threaded: INSTALL_TOOLS_JOBS of them (default 3)
# install at once, each into its own log, printed whole when it ends. The Go build and
# module caches are safe to share between concurrent builds; Maven's local repository is
# not promised to be, so the Maven jars install one after the other, in one job.
jobs=${INSTALL_TOOLS_JOBS:-3}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
start=$SECONDS
declare -A running=()  # pid -> tool
failed=()
reap() { # waits for one job to end; prints its log
  local pid tool rc=0
  wait -n -p pid "${!running[@]}" || rc=$?
  tool=${running[$pid]}
  unset "running[$pid]"
  cat "$logs/${tool// /+}.log" >&2
  [[ $rc -eq 0 ]] || failed+=("$tool")
}
go_tools=() maven_tools=()
for tool in "${want[@]}"; do
  case $tool in
    kafka|spark-jars) maven_tools+=("$tool") ;;
    *) go_tools+=("$tool") ;;
  esac
done
if [[ ${#maven_tools[@]} -gt 0 ]]; then
  label="${maven_tools[*]}"
  (for tool in "${maven_tools[@]}"; do install "$tool"; done) >"$logs/${label// /+}.log" 2>&1 &
  running[$!]=$label
fi
for tool in "${go_tools[@]}"; do
  while [[ ${#running[@]} -ge $jobs ]]; do reap; done
  install "$tool" >"$logs/$tool.log" 2>&1 &
  running[$!]=$tool
done
while [[ ${#running[@]} -gt 0 ]]; do reap; done
if [[ ${#failed[@]} -gt 0 ]]; then
  log "FAILED: ${failed[*]} (their logs above); retry with: hack/install-tools.sh ${failed[*]}"
  exit 1
fi
log "installed: $(cd "$STAMPS" && ls | tr '\n' ' ')"
log "total $((SECONDS - start)) s; cache $(du -sh "$TOOLS_DIR" | cut -f1) in $TOOLS_DIR, Go module cache $(du -sh "$(go env GOMODCACHE)" 2>/dev/null | cut -f1)"
