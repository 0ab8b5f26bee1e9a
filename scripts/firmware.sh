#!/bin/sh
# scripts/firmware.sh (make firmware): the smallest libmqtt5c.so for
# firmware that still passes its tests, without TLS and WebSocket. Each
# step is measured in docs/performance.md ("Footprint", "Firmware build"):
#
#  - the cdylib and staticlib built without the rlib (cargo rustc
#    --crate-type cdylib,staticlib): beside an rlib, rustc exports every
#    public Rust function for the rlib's users, and LTO cannot internalize
#    what the C API does not reach;
#  - std rebuilt (nightly -Z build-std) without its `backtrace` feature,
#    which drops the default panic hook's symbolizer (gimli, addr2line,
#    miniz_oxide), and compiled with the profile below;
#  - cargo profile `firmware` (Cargo.toml): the release profile at
#    opt-level "z" for this crate, every dependency and std
#    (FIRMWARE_OPT_LEVEL=s: 57 KB larger, 30% fewer instructions per
#    message);
#  - RELR relative relocations (-z pack-relative-relocs; the library then
#    needs glibc 2.36 or newer, FIRMWARE_RELR=0 leaves them out).
#
# panic = "unwind" stays: std keeps panic_unwind, and a C program checks
# that the library's own panic guard (src/ffi/guard.rs) still catches a
# panic in this build (scripts/firmware-check). Then the C API tests
# (tests/c_api.rs) against this library: FIRMWARE_TESTS names them (default
# "all": every one but those that need TLS, which fail against any build
# without it; "" for none).
#
# Prints the stripped size and fails above FIRMWARE_MAX_BYTES (1 MiB).
# Output: target/firmware-build/<triple>/firmware/libmqtt5c.so, the same
# stripped (libmqtt5c.stripped.so) and libmqtt5c.a beside it.
set -eu

toolchain=${FIRMWARE_TOOLCHAIN:-nightly}
relr=${FIRMWARE_RELR:-1}
max_bytes=${FIRMWARE_MAX_BYTES:-1048576}
opt_level=${FIRMWARE_OPT_LEVEL:-z}
tests=${FIRMWARE_TESTS-all}
cargo=${CARGO:-cargo}
cc=${CC:-cc}
strip=${STRIP:-strip}

cd "$(dirname "$0")/.."
root=$(pwd)
host=$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')
triple=${CARGO_BUILD_TARGET:-$host}
# A target directory of its own: cargo's fingerprint does not record
# `--crate-type`, so after a `cargo build --profile firmware` in the same
# directory it would take the cdylib built beside the rlib for this one.
target_dir=${FIRMWARE_TARGET_DIR:-$root/target/firmware-build}
out=$target_dir/$triple/firmware

if ! rustup component list --toolchain "$toolchain" --installed | grep -q '^rust-src'; then
    rustup component add rust-src --toolchain "$toolchain"
fi

flags=${RUSTFLAGS:-}
if [ "$relr" = 1 ]; then
    flags="$flags -C link-arg=-Wl,-z,pack-relative-relocs"
fi
build_std="-Z build-std=std,panic_unwind -Z build-std-features=panic-unwind"
# The profile's opt-level, for this crate and (through "*") std and every
# dependency; the same for the check below, so that it reuses this std.
set -- --config "profile.firmware.opt-level=\"$opt_level\"" \
    --config "profile.firmware.package.\"*\".opt-level=\"$opt_level\""
for p in tokio mio bytes; do
    set -- "$@" --config "profile.firmware.package.$p.opt-level=\"$opt_level\""
done

echo "firmware.sh: cargo +$toolchain rustc --profile firmware (opt-level $opt_level) --no-default-features --crate-type cdylib,staticlib, std without backtrace, RUSTFLAGS='$flags'"
# shellcheck disable=SC2086 # build_std is several words on purpose
RUSTFLAGS="$flags" "$cargo" "+$toolchain" "$@" rustc --profile firmware --no-default-features \
    $build_std --target "$triple" --target-dir "$target_dir" --lib --crate-type cdylib,staticlib

"$strip" -o "$out/libmqtt5c.stripped.so" "$out/libmqtt5c.so"
bytes=$(stat -c %s "$out/libmqtt5c.stripped.so")
echo "firmware.sh: $out/libmqtt5c.stripped.so: $bytes bytes stripped" \
    "($(awk "BEGIN { printf \"%.3f\", $bytes / 1048576 }") MiB; limit $max_bytes)"

if [ "$triple" != "$host" ]; then
    echo "firmware.sh: cross build for $triple: the checks run on the host only; skipped"
    exit 0
fi

# The panic guard, with the same std, profile and flags (the std built above
# is reused: same profile settings and RUSTFLAGS).
echo "firmware.sh: panic guard check (scripts/firmware-check)"
# shellcheck disable=SC2086
RUSTFLAGS="$flags" "$cargo" "+$toolchain" "$@" build --profile firmware $build_std --target "$triple" \
    --target-dir "$target_dir" --manifest-path scripts/firmware-check/Cargo.toml
"$cc" -std=c11 -Wall -Wextra -Werror scripts/firmware-check/check.c -o "$out/firmware-check" \
    -L"$out" -lmqtt5c_firmware_check -Wl,-rpath,"$out"
"$out/firmware-check" 2>"$out/firmware-check.stderr" || {
    cat "$out/firmware-check.stderr" >&2
    echo "firmware.sh: the panic guard check failed" >&2
    exit 1
}
# The default panic hook prints each panic's message, no backtrace (nor
# anything else: std has no symbolizer).
panics=$(grep -c "panicked at" "$out/firmware-check.stderr" || true)
if [ "$panics" != 4 ] || grep -v -e "panicked at" -e "deliberate panic" -e "index out of bounds" \
    -e "^note: run with .RUST_BACKTRACE=1." -e "^$" "$out/firmware-check.stderr" >&2; then
    echo "firmware.sh: unexpected panic output ($panics panics) above, in $out/firmware-check.stderr" >&2
    exit 1
fi

if [ -n "$tests" ]; then
    # The C API tests with the stable test harness of the minimal build
    # (as `make minimal`), against this library (MQTT5C_TEST_LIB_DIR).
    # shellcheck disable=SC2086 # tests is a list of names
    if [ "$tests" = all ]; then set -- --skip tls --skip test_cxx_binding; else set -- --exact $tests; fi
    # Its own target directory too: the library's files carry no hash in
    # their names (it is also a cdylib), so a build without TLS in target/
    # would overwrite target/debug/deps/libmqtt5c.rlib, and a later
    # `cargo test` would take it for the build with TLS. (The first run
    # builds the test dependencies there, a few minutes.)
    echo "firmware.sh: C API tests against $out/libmqtt5c.so: ${tests}"
    MQTT5C_TEST_LIB_DIR=$out "$cargo" test --no-default-features --target-dir "$target_dir" \
        --test c_api -- "$@"
fi

if [ "$bytes" -gt "$max_bytes" ]; then
    echo "firmware.sh: $bytes bytes is over the limit of $max_bytes" >&2
    exit 1
fi
echo "firmware.sh: OK, $bytes bytes"
