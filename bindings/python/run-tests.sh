#!/usr/bin/env bash
# Tests of the Python binding, as scripts/test-bindings.sh (make test, stage
# "bindings") runs them: a venv under build/ (reused between runs), the
# package installed into it with pip exactly as a user would
# (pip install ./bindings/python), pytest from PyPI, then pytest against the
# dev build of the library (make build PROFILE=dev: target/debug/libmqtt5c.so;
# the Makefile passes MQTT5C_LIB_DIR, the build's directory; MQTT5C_LIBRARY,
# a path to the library file, overrides both). Extra arguments go to pytest.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PYTHON_VENV:-$root/${BUILD_DIR:-build}/python-venv}"
python="${PYTHON:-python3}"
export MQTT5C_LIBRARY="${MQTT5C_LIBRARY:-${MQTT5C_LIB_DIR:-${CARGO_TARGET_DIR:-$root/target}/debug}/libmqtt5c.so}"
export MQTT5C_HEADER="${MQTT5C_HEADER:-$root/include/mqtt5c.h}"

if [ ! -f "$MQTT5C_LIBRARY" ]; then
    echo "python binding: no library at $MQTT5C_LIBRARY (make build PROFILE=dev first)" >&2
    exit 1
fi

pip_q=(-q --disable-pip-version-check)
if [ ! -x "$venv/bin/python" ]; then
    echo "python binding: creating $venv"
    "$python" -m venv "$venv" || {
        echo "python binding: '$python -m venv' failed (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
if ! "$venv/bin/python" -c 'import pytest, setuptools' 2>/dev/null; then
    "$venv/bin/python" -m pip install "${pip_q[@]}" pytest 'setuptools>=61' wheel
fi
# The package as users get it: a real (non-editable) install, rebuilt each run.
# --no-build-isolation: setuptools comes from the venv, not a download per run.
"$venv/bin/python" -m pip install "${pip_q[@]}" --no-build-isolation --no-deps --force-reinstall "$here"
rm -rf "$here/build" "$here/src/mqtt5c.egg-info"

cd "$root"
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q "$here/tests" "$@"
