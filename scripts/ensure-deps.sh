#!/usr/bin/env bash
# Installs what the tests need when it is missing: mosquitto (the tests start
# their own brokers), valgrind, a C/C++ compiler, make, git, and the rustfmt
# and clippy components. Used by .ci/run and `make test`.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have mosquitto || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
have valgrind || missing+=(valgrind)
have cc || missing+=(gcc)
have c++ || missing+=(g++)
have make || missing+=(make)
have git || missing+=(git)
have openssl || missing+=(openssl)   # RSA keys for the TLS tests

if [ "${#missing[@]}" -gt 0 ]; then
    echo "ensure-deps: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        have sudo || { echo "ensure-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! cargo fmt --version >/dev/null 2>&1; then
    rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add clippy
fi
