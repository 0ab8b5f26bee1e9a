#!/usr/bin/env bash
# `make demo`: a private mosquitto on a free port with its own config, the
# example subscriber in the background (-C 1), one message from the example
# publisher, and what arrived. Never touches a broker on 1883.
#
# Usage: examples-c/demo.sh [BIN_DIR]   (default: build, where `make examples` puts them)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}
topic="demo/hello"
message="hello from mqtt5c $(date +%H:%M:%S)"
for exe in "$bin/pub" "$bin/sub"; do
    [ -x "$exe" ] || { echo "demo: $exe missing; run 'make examples'" >&2; exit 1; }
done
mosquitto=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mqtt5c-demo.XXXXXX")
broker_pid=""
sub_pid=""
cleanup() {
    [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null || true
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Polls `cmd` every 50 ms for up to $1 seconds.
wait_for() {
    local secs=$1
    shift
    local tries=$((secs * 20))
    while ! "$@"; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || return 1
        sleep 0.05
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null; }

pick_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

# Start the broker; retry with another port if the one we picked got taken.
for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    cat >"$tmp/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
user root
log_dest file $tmp/mosquitto.log
CONF
    "$mosquitto" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.out" 2>&1 &
    broker_pid=$!
    if wait_for 10 port_open "$port"; then
        break
    fi
    echo "demo: mosquitto did not come up on port $port (attempt $attempt)" >&2
    cat "$tmp/mosquitto.out" "$tmp/mosquitto.log" 2>/dev/null >&2 || true
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
done
[ -n "$broker_pid" ] || { echo "demo: could not start mosquitto" >&2; exit 1; }
echo "demo: mosquitto on 127.0.0.1:$port"

"$bin/sub" -p "$port" -h 127.0.0.1 -t "$topic" -q 1 -C 1 >"$tmp/sub.out" 2>"$tmp/sub.err" &
sub_pid=$!
subscribed() { grep -q '^subscribed$' "$tmp/sub.err" || ! alive "$sub_pid"; }
wait_for 10 subscribed || { echo "demo: sub did not subscribe in time" >&2; cat "$tmp/sub.err" >&2; exit 1; }
if ! grep -q '^subscribed$' "$tmp/sub.err"; then
    echo "demo: sub exited early:" >&2
    cat "$tmp/sub.err" >&2
    exit 1
fi
echo "demo: sub subscribed to $topic"

"$bin/pub" -L "mqtt://127.0.0.1:$port" -t "$topic" -m "$message" -q 1
echo "demo: pub sent '$message'"

sub_done() { ! alive "$sub_pid"; }
wait_for 10 sub_done || { echo "demo: sub did not exit after one message" >&2; exit 1; }
sub_status=0
wait "$sub_pid" || sub_status=$?
sub_pid=""
if [ "$sub_status" -ne 0 ]; then
    echo "demo: sub failed ($sub_status):" >&2
    cat "$tmp/sub.err" >&2
    exit 1
fi
echo "demo: sub received:"
sed 's/^/    /' "$tmp/sub.out"
if [ "$(cat "$tmp/sub.out")" != "$topic $message" ]; then
    echo "demo: FAILED: expected '$topic $message'" >&2
    exit 1
fi
echo "demo: ok"
