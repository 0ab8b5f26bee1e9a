#!/usr/bin/env bash
# Builds the C# binding (Mqtt5c.dll) and its tests with Mono's mcs into
# build/csharp/ and runs them against the dev build of the library,
# target/debug/libmqtt5c.so (make's TEST_PROFILE; `make build` first, or
# MQTT5C_LIB_DIR=dir for another build). The binding's DllImport("mqtt5c")
# finds libmqtt5c.so through LD_LIBRARY_PATH, set here (README.md: the
# dllmap alternative). Each test starts its own mosquitto on a free loopback
# port. Arguments: test names to run only those (e.g. TestTls).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lib_dir=${MQTT5C_LIB_DIR:-$root/target/debug}
out=$root/build/csharp

for tool in mcs mono; do
    command -v "$tool" >/dev/null || { echo "bindings/csharp: $tool missing (Debian: mono-devel; scripts/ensure-deps.sh installs it)" >&2; exit 1; }
done
[ -f "$lib_dir/libmqtt5c.so" ] || { echo "bindings/csharp: no $lib_dir/libmqtt5c.so (run make build)" >&2; exit 1; }

mkdir -p "$out"
mcs -nologo -warn:4 -warnaserror -target:library -out:"$out/Mqtt5c.dll" "$here"/src/*.cs
mcs -nologo -warn:4 -warnaserror -out:"$out/Mqtt5c.Tests.exe" -r:"$out/Mqtt5c.dll" -r:System.Core "$here"/tests/*.cs

export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MQTT5C_HEADER="$root/include/mqtt5c.h"
export MQTT5C_LIB_DIR="$(cd "$lib_dir" && pwd)"   # TestDllMapConfigFindsLibrary
cd "$out"
exec mono --debug Mqtt5c.Tests.exe "$@"
