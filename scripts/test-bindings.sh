#!/usr/bin/env bash
# Runs every bindings/*/run-tests.sh, in sorted order, each even when an
# earlier one failed, and fails when any failed. Each script builds its
# binding and tests it against target/debug/libmqtt5c.so (`make test`'s
# stage `bindings`, after `build`).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
passed=""
failed=""
for script in $(ls "$root"/bindings/*/run-tests.sh 2>/dev/null | sort); do
    name=$(basename "$(dirname "$script")")
    echo "==== bindings: $name"
    if "$script"; then passed="$passed $name"; else failed="$failed $name"; fi
done
if [ -n "$failed" ]; then
    echo "bindings: FAILED:$failed; passed:${passed:- none}"
    exit 1
fi
echo "bindings: passed:${passed:- none (no bindings/*/run-tests.sh)}"
