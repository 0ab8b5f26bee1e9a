#!/usr/bin/env bash
# Benchmarks mqtt5c side by side with libmosquitto and Eclipse Paho C
# (MQTTClient), all speaking MQTT v5 to one private mosquitto broker.
#
# Usage: benches/run.sh [--no-build] [--instructions] [--quick] [--repeat N]
#                       [--no-results-file]
#
#   --no-build         do not run `cargo build --release` first
#   --instructions     also count instructions under valgrind --tool=callgrind
#                      (repeatable, unlike wall-clock numbers)
#   --quick            smaller counts, one repetition (a smoke test)
#   --repeat N         run every scenario N times (default 3); the table shows
#                      the median, and the worst value for lost/duplicates
#   --no-results-file  print the table only; leave benches/results.md alone
#
# Environment: CARGO_TARGET_DIR (library in $CARGO_TARGET_DIR/release,
# default target/release), CC (default cc), MOSQUITTO (broker binary),
# LAT_N, PUBACK_N, QOS0_N, QOS1_N, IDLE_N, IDLE10K_N, CG_N (scenario sizes).
#
# Besides the table (benches/results.md) it draws benches/ratios.svg, the
# ratios to libmosquitto as a chart (benches/chart.py), and measures the
# stripped sizes of libmqtt5c.so with everything and without TLS and
# WebSocket (built into $CARGO_TARGET_DIR/minimal) beside libmosquitto's and
# Paho C's. The descriptor limit is raised to the hard limit for the
# 10,000 idle clients (idle10k).
#
# Needs: libmosquitto-dev, libpaho-mqtt-dev, mosquitto (the broker), a C
# compiler; valgrind for --instructions. Installs the Debian packages that
# are missing (apt-get, through sudo when not root). Never touches a broker
# on 1883.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=1 instructions=0 quick=0 write_results=1 repeat=""
args=("$@")
while [ $# -gt 0 ]; do
    arg=$1
    shift
    case "$arg" in
    --repeat)
        repeat=${1:-}
        shift || true
        [[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --repeat needs a positive number" >&2; exit 2; }
        ;;
    --no-build) build=0 ;;
    --instructions) instructions=1 ;;
    --quick) quick=1 ;;
    --no-results-file) write_results=0 ;;
    -h | --help)
        sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "run.sh: unknown argument '$arg' (see --help)" >&2
        exit 2
        ;;
    esac
done

if [ "$quick" = 1 ]; then
    : "${repeat:=1}"
    : "${LAT_N:=50}" "${PUBACK_N:=500}" "${QOS0_N:=20000}" "${QOS1_N:=2000}" "${IDLE_N:=20}" "${IDLE10K_N:=1000}" "${CG_N:=2000}"
else
    : "${repeat:=3}"
    : "${LAT_N:=200}" "${PUBACK_N:=2000}" "${QOS0_N:=100000}" "${QOS1_N:=20000}" "${IDLE_N:=100}" "${IDLE10K_N:=10000}" "${CG_N:=10000}"
fi
CC=${CC:-cc}
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
lib_dir="$target_dir/release"
minimal_lib_dir="$target_dir/minimal/release" # --no-default-features, for its size
bin_dir="$target_dir/bench" # binaries go next to the library, not into the source tree
mosquitto=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
libs=(mqtt5c mosquitto paho)

die() {
    echo "run.sh: $*" >&2
    exit 1
}

# ---- prerequisites: installs what is missing (Debian packages) ---------------
missing=()
[ -x "$mosquitto" ] || missing+=(mosquitto)
[ -f /usr/include/mosquitto.h ] || missing+=(libmosquitto-dev)
[ -f /usr/include/MQTTClient.h ] && [ -f /usr/include/MQTTAsync.h ] || missing+=(libpaho-mqtt-dev)
if [ "$instructions" = 1 ] && ! command -v valgrind >/dev/null; then
    missing+=(valgrind)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "run.sh: installing ${missing[*]}" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root or sudo to install ${missing[*]}"
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    mosquitto=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
fi

# ---- build -----------------------------------------------------------------
if [ "$build" = 1 ]; then
    echo "run.sh: cargo build --release" >&2
    cargo build --release >&2
    echo "run.sh: cargo build --release --no-default-features (for the minimal library's size)" >&2
    cargo build --release --no-default-features --target-dir "$target_dir/minimal" >&2
    # The firmware build (make firmware) needs nightly; its size only (no tests).
    if rustup run nightly rustc -V >/dev/null 2>&1; then
        echo "run.sh: scripts/firmware.sh (for the firmware library's size)" >&2
        FIRMWARE_TESTS="" FIRMWARE_TARGET_DIR="$target_dir/firmware-build" scripts/firmware.sh >&2 ||
            echo "run.sh: the firmware build failed; its size row is left out" >&2
    else
        echo "run.sh: no nightly toolchain: the firmware build's size row is left out" >&2
    fi
fi
[ -f "$lib_dir/libmqtt5c.so" ] || die "$lib_dir/libmqtt5c.so missing (run without --no-build)"
mkdir -p "$bin_dir"
cflags=(-std=c11 -O2 -g -Wall -Wextra -Werror -pthread)
"$CC" "${cflags[@]}" -Iinclude benches/bench_mqtt5c.c -o "$bin_dir/bench_mqtt5c" \
    -L"$lib_dir" -lmqtt5c -Wl,-rpath,"$lib_dir"
"$CC" "${cflags[@]}" benches/bench_mosquitto.c -o "$bin_dir/bench_mosquitto" -lmosquitto
"$CC" "${cflags[@]}" benches/bench_paho.c -o "$bin_dir/bench_paho" -lpaho-mqtt3c
"$CC" "${cflags[@]}" benches/bench_paho_async.c -o "$bin_dir/bench_paho_async" -lpaho-mqtt3a
echo "run.sh: built $bin_dir/bench_{mqtt5c,mosquitto,paho,paho_async}" >&2

# ---- descriptors: the broker and idle10k need more than the usual 1024 -------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)

# ---- private broker ----------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mqtt5c-bench.XXXXXX")
broker_pid=""
cleanup() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}
start_broker() {
    local attempt tries
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        # max_queued_messages: mosquitto 2.0 counts QoS 0 messages waiting in
        # a client's outgoing queue against this limit too (default 1000) and
        # drops QoS 0 beyond it; raised so the broker's queue never limits the
        # QoS 0 burst. Everything else is the broker default (in particular
        # max_inflight_messages 20, sent to clients as Receive Maximum, and
        # set_tcp_nodelay false).
        cat >"$tmp/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
user $(id -un)
log_dest file $tmp/mosquitto.log
CONF
        "$mosquitto" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.out" 2>&1 &
        broker_pid=$!
        for ((tries = 0; tries < 200; tries++)); do
            port_open "$port" && return 0
            kill -0 "$broker_pid" 2>/dev/null || break
            sleep 0.05
        done
        echo "run.sh: mosquitto did not come up on port $port (attempt $attempt)" >&2
        cat "$tmp/mosquitto.out" "$tmp/mosquitto.log" >&2 2>/dev/null || true
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
        broker_pid=""
    done
    die "could not start mosquitto"
}
start_broker
echo "run.sh: private mosquitto on 127.0.0.1:$port" >&2

# ---- runs --------------------------------------------------------------------
results="$tmp/results.txt"
: >"$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
failures=()

# run LIB SCENARIO COUNT [PROGRAM]: one process per scenario, so each starts
# clean. Each gets a fresh persistence directory (used by qos1persist) under
# $TMPDIR, which should be on a real disk: on tmpfs fdatasync costs nothing.
run() {
    local lib=$1 scenario=$2 count=$3 program=${4:-bench_$1} rc=0
    echo "run.sh: $lib $scenario $count" >&2
    rm -rf "$tmp/persist" && mkdir "$tmp/persist"
    BENCH_PERSIST_DIR="$tmp/persist" timeout 300 "$bin_dir/$program" 127.0.0.1 "$port" "$scenario" "$count" \
        >"$tmp/out" 2>"$tmp/err" || rc=$?
    grep '^RESULT ' "$tmp/out" >>"$results" || true
    sed 's/^/    /' "$tmp/err" >&2
    if [ "$rc" -ne 0 ]; then
        failures+=("$lib $scenario (exit $rc)")
        echo "RESULT $lib $scenario FAILED exit_$rc" >>"$results"
    fi
    kill -0 "$broker_pid" 2>/dev/null || die "the broker died during $lib $scenario"
}

# ---- library sizes: stripped copies (strip -o), in KiB -------------------------
stripped_kib() {
    [ -f "$1" ] || return 1
    strip -o "$tmp/stripped.so" "$1" 2>/dev/null || return 1
    echo "$(stat -c %s "$tmp/stripped.so")" | awk '{ printf "%.1f", $1 / 1024 }'
}
shared_lib() { ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n { print $NF; exit }'; }
size_result() { # LIB METRIC PATH
    local kib
    if kib=$(stripped_kib "$3"); then
        echo "RESULT $1 size $2 $kib" >>"$results"
    else
        echo "run.sh: no library at '$3' for the size of $1 ($2)" >&2
    fi
}
size_result mqtt5c stripped_kib "$lib_dir/libmqtt5c.so"
size_result mqtt5c stripped_minimal_kib "$minimal_lib_dir/libmqtt5c.so"
host_triple=$(rustc -vV | sed -n 's/^host: //p')
size_result mqtt5c stripped_firmware_kib "$target_dir/firmware-build/$host_triple/firmware/libmqtt5c.so"
# libmosquitto has one build (with TLS): it is the reference for both rows.
size_result mosquitto stripped_kib "$(shared_lib libmosquitto.so.1)"
size_result mosquitto stripped_minimal_kib "$(shared_lib libmosquitto.so.1)"
size_result mosquitto stripped_firmware_kib "$(shared_lib libmosquitto.so.1)"
# Paho C: the asynchronous library with TLS, and without.
size_result paho stripped_kib "$(shared_lib libpaho-mqtt3as.so.1)"
size_result paho stripped_minimal_kib "$(shared_lib libpaho-mqtt3a.so.1)"
size_result paho stripped_firmware_kib "$(shared_lib libpaho-mqtt3a.so.1)"

# Repetitions are the outer loop, so load changes spread over all libraries.
for ((rep = 1; rep <= repeat; rep++)); do
    [ "$repeat" -gt 1 ] && echo "run.sh: repetition $rep of $repeat" >&2
    for lib in "${libs[@]}"; do
        run "$lib" latency "$LAT_N"
        run "$lib" echo0 "$LAT_N"
        [ "$lib" != paho ] && run "$lib" puback "$PUBACK_N"
        run "$lib" qos0 "$QOS0_N"
        run "$lib" qos1 "$QOS1_N"
        if [ "$lib" = mqtt5c ]; then
            run "$lib" qos1mt "$QOS1_N"
            run "$lib" qos1async "$QOS1_N"
            run "$lib" qos1persist "$QOS1_N"
            run "$lib" qos1persistmt "$QOS1_N"
        fi
        # Paho C's file persistence needs its asynchronous API (MQTTAsync).
        [ "$lib" = paho ] && run "$lib" qos1persist "$QOS1_N" bench_paho_async
        run "$lib" idle "$IDLE_N"
        # Paho C's MQTTClient takes threads per client too; not run at 10,000.
        [ "$lib" != paho ] && run "$lib" idle10k "$IDLE10K_N"
    done
done

# Instruction counts: callgrind totals (all threads) of a run with CG_N + 1
# QoS 0 messages minus a run with 1 message, divided by CG_N: the marginal
# cost of one message through publisher and subscriber, setup excluded.
if [ "$instructions" = 1 ]; then
    cg_total() {
        local lib=$1 n=$2 rc=0
        echo "run.sh: callgrind $lib qos0 $n" >&2
        timeout 600 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
            "$bin_dir/bench_$lib" 127.0.0.1 "$port" qos0 "$n" >"$tmp/out" 2>"$tmp/err" || rc=$?
        if [ "$rc" -ne 0 ] || ! grep -q "RESULT $lib qos0 lost 0$" "$tmp/out"; then
            sed 's/^/    /' "$tmp/err" "$tmp/out" | grep -v '^    ==' >&2 || true
            return 1
        fi
        sed -n 's/^==[0-9]*== Collected : \([0-9]*\).*/\1/p' "$tmp/err"
    }
    for lib in "${libs[@]}"; do
        if base=$(cg_total "$lib" 1) && full=$(cg_total "$lib" $((CG_N + 1))) && [ -n "$base" ] && [ -n "$full" ]; then
            echo "RESULT $lib callgrind_qos0 instr_setup_1msg $base" >>"$results"
            echo "RESULT $lib callgrind_qos0 instr_per_msg $(((full - base) / CG_N))" >>"$results"
        else
            failures+=("$lib callgrind")
            echo "RESULT $lib callgrind_qos0 FAILED see_stderr" >>"$results"
        fi
    done
fi

kill "$broker_pid" 2>/dev/null || true
wait "$broker_pid" 2>/dev/null || true
broker_pid=""

# ---- table -------------------------------------------------------------------
# One row per "scenario metric", one column per library; scenarios in
# first-seen order, metrics within a scenario in first-seen order. A cell is
# the median over the repetitions (numeric sort; the lower middle value for an
# even count), except the loss counters, which show the worst repetition.
# Then one column per other library: its cell divided by libmosquitto's
# (the ratio of the medians), where both are numbers and libmosquitto's is
# not 0.
ref_lib=mosquitto
table() {
    awk -v libs="${libs[*]}" -v ref="$ref_lib" '
        BEGIN { nl = split(libs, L, " ") }
        $1 == "RESULT" {
            s = $3; key = $3 " " $4
            if (!(s in sseen)) { sseen[s] = 1; sorder[++ns] = s }
            if (!(key in seen)) { seen[key] = 1; morder[s, ++nm[s]] = key }
            c = ++cnt[$2, key]
            v[$2, key, c] = $5
        }
        function cell(lib, key, metric,   n, i, j, t, a, worst) {
            n = cnt[lib, key]
            if (n == 0) return "-"
            for (i = 1; i <= n; i++) a[i] = v[lib, key, i]
            if (a[1] !~ /^-?[0-9.]+$/) return a[1]          # FAILED markers
            for (i = 2; i <= n; i++)                         # insertion sort
                for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            if (metric ~ /^(lost|duplicates|out_of_order|foreign)$/) return a[n]
            return a[int((n + 1) / 2)]
        }
        function num(x) { return x ~ /^-?[0-9]+(\.[0-9]+)?$/ }
        function ratio(a, b,   r) {
            if (!num(a) || !num(b) || b + 0 == 0) return "-"
            r = (a + 0) / (b + 0)
            return sprintf(r < 0.1 && r > -0.1 ? "%.2g" : "%.2f", r)   # 2 digits even when small
        }
        END {
            printf "| scenario | metric |"
            for (i = 1; i <= nl; i++) printf " %s |", L[i]
            for (i = 1; i <= nl; i++) if (L[i] != ref) printf " %s / %s |", L[i], ref
            printf "\n|---|---|"
            for (i = 1; i <= nl; i++) printf "---:|"
            for (i = 1; i <= nl; i++) if (L[i] != ref) printf "---:|"
            printf "\n"
            for (j = 1; j <= ns; j++) {
                s = sorder[j]
                for (k = 1; k <= nm[s]; k++) {
                    key = morder[s, k]
                    split(key, p, " ")
                    printf "| %s | %s |", p[1], p[2]
                    for (i = 1; i <= nl; i++) cv[L[i]] = cell(L[i], key, p[2])
                    for (i = 1; i <= nl; i++) printf " %s |", cv[L[i]]
                    for (i = 1; i <= nl; i++) if (L[i] != ref) printf " %s |", ratio(cv[L[i]], cv[ref])
                    printf "\n"
                }
            }
        }' "$results"
}

mosq_version=$({ "$mosquitto" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -1)
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
ours=$({ strings "$lib_dir/libmqtt5c.so" 2>/dev/null || true; } | grep -m1 '^mqtt5c [0-9]' || echo "mqtt5c")
header=$(
    cat <<EOF
Run: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r); load average at start ${load_start}, at end $(cut -d' ' -f1-3 /proc/loadavg)
Broker: mosquitto ${mosq_version:-unknown} on 127.0.0.1, private config (max_queued_messages 1000000, otherwise defaults)
Libraries: ${ours} (release, $(git rev-parse --short HEAD 2>/dev/null || echo "no git")), libmosquitto $(pkg_version libmosquitto1), Paho C $(pkg_version libpaho-mqtt1.3) (MQTTClient; MQTTAsync for qos1persist)
Persistence directory: on $(df -P "$tmp" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$tmp"))
Sizes: $repeat repetition(s) (median shown; ratio columns: median / libmosquitto median), latency and echo0 $LAT_N round trips, puback $PUBACK_N, qos0 $QOS0_N, qos1/qos1mt/qos1async/qos1persist/qos1persistmt $QOS1_N messages of 64 bytes, idle $IDLE_N clients, idle10k $IDLE10K_N clients (descriptor limit $fd_limit)$([ "$instructions" = 1 ] && echo ", callgrind $CG_N QoS 0 messages")
EOF
)
tbl=$(table)
echo
echo "$header"
echo
echo "$tbl"

if [ "$write_results" = 1 ]; then
    {
        echo "# mqtt5c benchmark results"
        echo
        echo "Generated by \`benches/run.sh ${args[*]}\`; see benches/README.md for what each row means."
        echo
        echo "$header" | sed 's/$/  /'
        echo
        echo "$tbl"
        if [ "${#failures[@]}" -gt 0 ]; then
            echo
            echo "Failed: ${failures[*]}"
        fi
        echo
        echo "<details><summary>All RESULT lines (every repetition)</summary>"
        echo
        echo '```'
        cat "$results"
        echo '```'
        echo
        echo "</details>"
    } >benches/results.md
    echo
    echo "run.sh: wrote benches/results.md" >&2
    if python3 benches/chart.py "$results" benches/ratios.svg \
        "mqtt5c / libmosquitto, $(date -u '+%Y-%m-%d'), $(nproc) CPUs, $repeat repetition(s)"; then
        echo "run.sh: wrote benches/ratios.svg" >&2
    else
        failures+=("chart")
    fi
fi

if [ "${#failures[@]}" -gt 0 ]; then
    echo "run.sh: FAILED: ${failures[*]}" >&2
    exit 1
fi
