#!/usr/bin/env bash
# Installs what the tests and the demo need when it is missing, and nothing
# else: the Debian packages mosquitto and nats-server (the tests start
# their own brokers; NATS's MQTT gateway is the 3.1.1-only one),
# valgrind, openssl, gcc, g++, make, git, cmake and pkg-config (the install
# test builds programs against an installed copy with both),
# libmosquitto-dev and libpaho-mqtt-dev (tests/header_coexist.rs includes
# their headers next to ours), libssl-dev (examples-c/tls_signer.c),
# python3 and python3-venv (bindings/python: a venv, pytest from PyPI), golang-go (bindings/go: cgo, go test),
# mono-devel (bindings/csharp: mcs and mono), clang and its sanitizer
# runtimes libclang-rt-N-dev (`make asan`: the C tests under ASan and
# UBSan; N is clang's major version), and the rustup
# components rustfmt and clippy. Used by .ci/run, `make test` and `make
# demo`; README.md ("Two commands") lists the same: keep them in step.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
# A C header the compiler finds (checked after cc, so with a compiler).
have_header() { have cc && echo "#include <$1>" | cc -E -x c - >/dev/null 2>&1; }

missing=()
have mosquitto || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
have nats-server || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)   # tests/nats.rs
have valgrind || missing+=(valgrind)
have cc || missing+=(gcc)
have c++ || missing+=(g++)
have make || missing+=(make)
have git || missing+=(git)
have openssl || missing+=(openssl)   # RSA keys for the TLS tests
have cmake || missing+=(cmake)       # tests/install.rs: find_package(mqtt5c)
have pkg-config || missing+=(pkg-config)
have_header mosquitto.h || missing+=(libmosquitto-dev)   # tests/header_coexist.rs
have_header MQTTClient.h || missing+=(libpaho-mqtt-dev)
have_header openssl/evp.h || missing+=(libssl-dev)   # examples-c/tls_signer.c
have python3 || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)   # bindings/python
have go || missing+=(golang-go)   # bindings/go
{ have mcs && have mono; } || missing+=(mono-devel)   # bindings/csharp
have clang || missing+=(clang)   # make asan

install_missing() {
    [ "${#missing[@]}" -gt 0 ] || return 0
    echo "ensure-deps: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        have sudo || { echo "ensure-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    missing=()
}
install_missing

# The sanitizer runtimes match clang's version, known once clang is here.
sanitizers_link() {
    echo 'int main(void) { return 0; }' |
        clang -fsanitize=address,undefined -x c - -o /dev/null >/dev/null 2>&1
}
if ! sanitizers_link; then
    missing+=("libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev")
    install_missing
fi

if ! cargo fmt --version >/dev/null 2>&1; then
    rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add clippy
fi
