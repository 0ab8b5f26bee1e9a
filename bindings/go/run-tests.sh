#!/usr/bin/env bash
# Tests of the Go binding, as scripts/test-bindings.sh (make test, stage
# "bindings") runs them: go vet, then go test (which starts its own
# mosquitto per test) against the dev build of the library
# (target/debug/libmqtt5c.so; the Makefile passes MQTT5C_LIB_DIR, the
# build's directory). cgo finds the library with pkg-config: this script
# writes a mqtt5c.pc for the build tree (libdir = that directory,
# includedir = include/) into build/go/pkgconfig and puts it first on
# PKG_CONFIG_PATH; the test binary finds libmqtt5c.so through
# LD_LIBRARY_PATH. Standard library only and GOPROXY=off: nothing is
# downloaded. Extra arguments go to go test (e.g. -run TestErrors -v).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib_dir="${MQTT5C_LIB_DIR:-${CARGO_TARGET_DIR:-$root/target}/debug}"
pc_dir="$root/${BUILD_DIR:-build}/go/pkgconfig"

if [ ! -f "$lib_dir/libmqtt5c.so" ]; then
    echo "go binding: no library at $lib_dir/libmqtt5c.so (make build PROFILE=dev first)" >&2
    exit 1
fi
command -v go >/dev/null 2>&1 || {
    echo "go binding: no 'go' on PATH (Debian: apt-get install golang-go; scripts/ensure-deps.sh does)" >&2
    exit 1
}

version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
mkdir -p "$pc_dir"
cat > "$pc_dir/mqtt5c.pc" <<PC
# The build tree of $root, for bindings/go/run-tests.sh
libdir=$lib_dir
includedir=$root/include

Name: mqtt5c
Description: MQTT v5.0 client library (build tree)
Version: $version
Libs: -L\${libdir} -lmqtt5c
Cflags: -I\${includedir}
PC

export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GOFLAGS="${GOFLAGS:--mod=mod}" GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=1
# go needs a build cache: under build/ when there is no home to put it in (CI).
if [ -z "${HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then
    export GOCACHE="$root/${BUILD_DIR:-build}/go/cache" GOPATH="$root/${BUILD_DIR:-build}/go/path"
fi

cd "$here"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
    echo "go binding: not gofmt-formatted: $unformatted" >&2
    exit 1
fi
go vet ./...
# -count=1: the library may have changed under an unchanged Go package.
exec go test -count=1 -timeout 300s "$@" ./...
