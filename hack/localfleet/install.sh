#!/usr/bin/env bash
# Install the local fleet's binaries: etcd (Debian's etcd-server) and kube-apiserver, built from
# Debian's `kubernetes` source package with Debian's Go, cached outside the work tree.
#
#   hack/localfleet/install.sh            # prints the assets directory on the last line of stdout
#
# Environment:
#   C5C3_KUBE_ASSETS       a directory holding executable `kube-apiserver` and `etcd`: used as is,
#                          nothing is built or installed (envtest-style assets).
#   C5C3_CACHE_DIR         cache root (default: ${XDG_CACHE_HOME:-~/.cache}/c5c3-gitops)
#   C5C3_KUBE_VERSION      Debian source version to build (default: 1.20.2)
#   C5C3_BUILD_JOBS        parallelism hint for the Go build (default: nproc)
#
# The result is <cache>/<version>/{kube-apiserver,etcd}; a second run finds it and does nothing.
set -euo pipefail

KUBE_VERSION="${C5C3_KUBE_VERSION:-1.20.2}"
CACHE_ROOT="${C5C3_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/c5c3-gitops}"
ASSETS="$CACHE_ROOT/$KUBE_VERSION"
GO_PKG=golang-1.19-go
GOROOT_DEB=/usr/lib/go-1.19
REFLECT2_DEB=/usr/share/gocode/src/github.com/modern-go/reflect2

log() { printf 'local-fleet install: %s\n' "$*" >&2; }
die() {
    printf '\nlocal-fleet install FAILED: %s\n' "$1" >&2
    shift
    for hint in "$@"; do printf '  -> %s\n' "$hint" >&2; done
    exit 1
}

check_assets() { # dir -> 0 when both binaries are present and run
    local dir=$1
    [[ -x "$dir/kube-apiserver" && -x "$dir/etcd" ]] || return 1
    "$dir/kube-apiserver" --version >/dev/null 2>&1 || return 1
    "$dir/etcd" --version >/dev/null 2>&1 || return 1
}

# 1. user-provided assets -----------------------------------------------------------------------
if [[ -n "${C5C3_KUBE_ASSETS:-}" ]]; then
    check_assets "$C5C3_KUBE_ASSETS" || die "C5C3_KUBE_ASSETS=$C5C3_KUBE_ASSETS does not hold runnable kube-apiserver and etcd" \
        "point C5C3_KUBE_ASSETS at a directory with both executables (e.g. envtest assets)," \
        "or unset it to let this script build kube-apiserver $KUBE_VERSION from Debian's source package"
    log "using C5C3_KUBE_ASSETS=$C5C3_KUBE_ASSETS"
    echo "$C5C3_KUBE_ASSETS"
    exit 0
fi

# 2. cache hit -----------------------------------------------------------------------------------
# Prints the cached assets and ends the script when the cache holds a runnable pair.
exit_if_cached() {
    if [[ -x "$ASSETS/kube-apiserver" && ! -e "$ASSETS/etcd" && -x /usr/bin/etcd ]]; then
        ln -sfn /usr/bin/etcd "$ASSETS/etcd"
    fi
    if check_assets "$ASSETS"; then
        log "cached: $ASSETS ($("$ASSETS/kube-apiserver" --version 2>&1))"
        echo "$ASSETS"
        exit 0
    fi
}
exit_if_cached

# 3. build ---------------------------------------------------------------------------------------
# One build at a time per cache (concurrent sessions/CI jobs): wait, then look at the cache again.
mkdir -p "$CACHE_ROOT"
if command -v flock >/dev/null; then
    exec 9>"$CACHE_ROOT/.install-$KUBE_VERSION.lock"
    if ! flock -n 9; then
        log "another install is building kube-apiserver $KUBE_VERSION: waiting for it"
        flock 9
    fi
    exit_if_cached  # the build we waited for may have filled the cache
fi
START=$(date +%s)
[[ "$(id -u)" == 0 ]] || command -v sudo >/dev/null || die "installing packages needs root (or sudo)" \
    "run 'hack/local-fleet install' as root once, or set C5C3_KUBE_ASSETS to existing binaries"
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
command -v apt-get >/dev/null || die "apt-get not found: this installer needs Debian 12 (bookworm)" \
    "set C5C3_KUBE_ASSETS to a directory with kube-apiserver and etcd instead"

# deb-src entry for the configured Debian mirror (deb822 or one-line format)
SRC_LIST=/etc/apt/sources.list.d/c5c3-gitops-deb-src.sources
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    MIRROR=$(awk '/^URIs:/ && /debian\/?$/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [[ -z "$MIRROR" ]]; then
        MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    log "adding deb-src entry for $MIRROR $CODENAME ($SRC_LIST)"
    $SUDO tee "$SRC_LIST" >/dev/null <<EOF
Types: deb-src
URIs: $MIRROR
Suites: $CODENAME
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

log "apt-get update"
$SUDO apt-get update -qq >&2 || die "apt-get update failed" "check network access to the Debian mirror"
PKGS=(etcd-server "$GO_PKG" golang-github-modern-go-reflect2-dev dpkg-dev make rsync)
log "apt-get install ${PKGS[*]}"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >&2 \
    || die "apt-get install ${PKGS[*]} failed" "check the Debian mirror; the packages are in bookworm main"
[[ -x "$GOROOT_DEB/bin/go" ]] || die "$GOROOT_DEB/bin/go missing after installing $GO_PKG"
[[ -f "$REFLECT2_DEB/reflect2.go" ]] || die "$REFLECT2_DEB/reflect2.go missing after installing golang-github-modern-go-reflect2-dev"

BUILD="$CACHE_ROOT/build-$KUBE_VERSION"
rm -rf "$BUILD"
mkdir -p "$BUILD"
trap 'rm -rf "$BUILD"' EXIT
cd "$BUILD"
log "apt-get source kubernetes=$KUBE_VERSION* into $BUILD"
SRC_VER=$(apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2}' | grep -E "(^|really)${KUBE_VERSION//./\\.}-" | head -1 || true)
[[ -n "$SRC_VER" ]] || die "Debian source package kubernetes $KUBE_VERSION not found (apt-cache showsrc kubernetes)" \
    "check the deb-src entry in $SRC_LIST and run apt-get update"
apt-get source -qq "kubernetes=$SRC_VER" >&2 || die "apt-get source kubernetes=$SRC_VER failed"
SRC=$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
[[ -d "$SRC/vendor/github.com/modern-go/reflect2" ]] || die "unexpected source tree in $BUILD (no vendor/github.com/modern-go/reflect2)"

# vendored reflect2 1.0.1 crashes (SIGSEGV marshalling maps) with Go >= 1.18: use Debian's 1.0.2
log "replacing vendor/github.com/modern-go/reflect2 with Debian's golang-github-modern-go-reflect2-dev"
rm -f "$SRC"/vendor/github.com/modern-go/reflect2/*.go "$SRC"/vendor/github.com/modern-go/reflect2/*.s
find "$REFLECT2_DEB" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
    -exec cp {} "$SRC/vendor/github.com/modern-go/reflect2/" \;

log "building cmd/kube-apiserver (takes about 5-7 minutes on 2 cores)"
cd "$SRC"
export PATH="$GOROOT_DEB/bin:$PATH" GOROOT="$GOROOT_DEB" CGO_ENABLED=0 GOPROXY=off \
    GOCACHE="$BUILD/gocache" KUBE_GIT_VERSION="v$KUBE_VERSION" KUBE_GIT_TREE_STATE=clean \
    KUBE_GIT_COMMIT=0000000000000000000000000000000000000000 KUBE_BUILD_PLATFORMS=linux/amd64
unset GOPATH GO111MODULE
if ! make WHAT=cmd/kube-apiserver >"$BUILD.log" 2>&1; then
    tail -40 "$BUILD.log" >&2
    die "make WHAT=cmd/kube-apiserver failed (full log: $BUILD.log)" \
        "needs ~2 GB free disk in $CACHE_ROOT and $GO_PKG; rerun 'hack/local-fleet install' after fixing"
fi
BIN=$(find "$SRC/_output" -type f -name kube-apiserver -perm -u+x | head -1)
[[ -n "$BIN" ]] || die "build finished but no kube-apiserver binary under $SRC/_output (log: $BUILD.log)"
"$BIN" --version >/dev/null || die "built kube-apiserver does not run (log: $BUILD.log)"

mkdir -p "$ASSETS"
cp "$BIN" "$ASSETS/kube-apiserver.tmp"
mv -f "$ASSETS/kube-apiserver.tmp" "$ASSETS/kube-apiserver"
ln -sfn /usr/bin/etcd "$ASSETS/etcd"
check_assets "$ASSETS" || die "installed assets in $ASSETS do not run"
rm -f "$BUILD.log"
log "built $("$ASSETS/kube-apiserver" --version) in $(( $(date +%s) - START ))s -> $ASSETS"
echo "$ASSETS"
